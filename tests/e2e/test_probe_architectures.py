"""The probe's fast paths on other Hugging Face architectures than the embedded Llama.

The likelihood estimator packs a prompt and its solutions' prefix tree into one row with a 4-D
attention mask and explicit positions, and the rollout engine left-pads with explicit positions; both
lean on how a model reads `position_ids` and masks. GPT-2 (learned absolute positions), Qwen2 (grouped
KV heads) and GPT-NeoX (partial rotary) must give what a plain teacher-forced pass gives.
"""

import pytest
import torch

from reweightlab.data.encoding import encode_prompts
from reweightlab.data.store import SequenceStore, microbatches
from reweightlab.models import build_char_tokenizer
from reweightlab.models.forward import teacher_forced_logp
from reweightlab.probe.likelihood import completion_logprobs_shared_prompt, sequence_logprobs
from reweightlab.rollout import HFRolloutEngine
from reweightlab.tasks import get_task


def _model(arch: str, V: int):
    import transformers as tf

    torch.manual_seed(0)
    if arch == "gpt2":
        model = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=V, n_positions=128, n_embd=32, n_layer=2, n_head=4,
                                                 bos_token_id=None, eos_token_id=None))
    elif arch == "qwen2":
        model = tf.Qwen2ForCausalLM(tf.Qwen2Config(vocab_size=V, hidden_size=32, intermediate_size=64,
                                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                                   max_position_embeddings=128))
    else:
        model = tf.GPTNeoXForCausalLM(tf.GPTNeoXConfig(vocab_size=V, hidden_size=32, intermediate_size=64,
                                                       num_hidden_layers=2, num_attention_heads=4,
                                                       max_position_embeddings=128))
    with torch.no_grad():  # large weights: a near-uniform model would hide position or mask mistakes
        for p in model.parameters():
            if p.dim() > 1:
                p.mul_(8.0)
    return model.eval()


@pytest.mark.parametrize("arch", ["gpt2", "qwen2", "neox"])
def test_likelihood_and_sampler_logprobs_on_other_architectures(arch):
    tok = build_char_tokenizer()
    model = _model(arch, len(tok))
    task = get_task("digits")
    problems = task.problems("id", "train", 3, 0)
    prompts = [p.prompt for p in problems] + ["12345:"]  # prompts of different lengths
    comps = [task.solutions(p) for p in problems] + [["", "7"]]
    flat_p = [p for p, cs in zip(prompts, comps, strict=True) for _ in cs]
    ref_N = sequence_logprobs(model, tok, flat_p, [c for cs in comps for c in cs])
    for method in ("tree", "cache"):
        got_N = completion_logprobs_shared_prompt(model, tok, prompts, comps, method=method)
        torch.testing.assert_close(got_N, ref_N, atol=1e-4, rtol=0)

    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    ids = encode_prompts(tok, prompts)
    rollout = engine.generate(ids, samples_per_prompt=4, max_new_tokens=6, seed=0)
    store = SequenceStore.from_rollout(ids, rollout, tok.pad_token_id)
    tf_NT = teacher_forced_logp(model, microbatches(store, 64), len(store), store.ids_NL.shape[1], "cpu")
    torch.testing.assert_close(tf_NT.sum(1), store.logp_sampler_NT.sum(1), atol=1e-4, rtol=0)
