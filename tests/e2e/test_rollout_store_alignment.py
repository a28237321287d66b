"""The RL loop reuses the sampler's log-probs as logp_old: they must equal a teacher-forced pass
over the stored (prompt + completion) sequences, position by position."""

import torch

from reweightlab.data.encoding import encode_prompts
from reweightlab.data.store import SequenceStore, microbatches
from reweightlab.models import load_model, load_tokenizer
from reweightlab.models.forward import teacher_forced_logp
from reweightlab.rollout import HFRolloutEngine


def test_sampler_logp_equals_teacher_forced_in_the_store(tiny_model_dir):
    tok, model = load_tokenizer(tiny_model_dir), load_model(tiny_model_dir)
    prompts = encode_prompts(tok, ["A 8 K 5|JQK=10|24:", "1:", "Q Q 2 3|J=11 Q=12 K=13|24:"])
    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    ro = engine.generate(prompts, samples_per_prompt=5, max_new_tokens=10, seed=3)
    store = SequenceStore.from_rollout(prompts, ro, tok.pad_token_id)
    mbs = microbatches(store, 4)
    tf = teacher_forced_logp(model, mbs, len(store), store.ids_NL.shape[1], "cpu")
    sampler = store.logp_sampler_NT
    assert tf.shape == sampler.shape
    assert torch.count_nonzero(sampler) == int(ro.completion_mask_NT.sum())
    torch.testing.assert_close(tf, sampler, atol=1e-4, rtol=0)
