"""The fast cached forward (models/fast_decode.py) against transformers' own cached forward.

Every stage a caller uses is compared on models built here: a left-padded prefill, the repeat of each
prompt to its samples (shared prompt columns), decode steps with finished (masked) rows, a left-padded
block fed mid-sequence (revision feedback), a reorder that is not a repeat (beam / subset), growth past
the reserved capacity, and grouped-query attention and attention biases (Qwen2).
"""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from reweightlab.models import fast_decode
from reweightlab.models.fast_decode import ENV_SWITCH, KVBuffer, fast_decode_supported, rows_to_compute
from reweightlab.models.forward import extend, left_pad, prefill
from reweightlab.rollout.hf import HFRolloutEngine

ATOL = 2e-5


def llama(kv_heads: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=128,
                         tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def qwen2() -> Qwen2ForCausalLM:
    torch.manual_seed(1)
    config = Qwen2Config(vocab_size=50, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # random biases, so that a dropped bias would show
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
    return model


def llama_rope(rope_type: str) -> LlamaForCausalLM:
    """A scaled RoPE: "linear" is tabulated per buffer, "dynamic" (angles that change once the sequence
    outgrows max_position_embeddings = 16, which the stages below do) is computed per forward."""
    torch.manual_seed(2)
    config = LlamaConfig(vocab_size=50, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16,
                         rope_parameters={"rope_type": rope_type, "factor": 2.0, "rope_theta": 10000.0})
    return LlamaForCausalLM(config).eval()


MODELS = {"llama-mha": lambda: llama(4), "llama-gqa": lambda: llama(2), "qwen2-bias": qwen2,
          "llama-linear-rope": lambda: llama_rope("linear"), "llama-dynamic-rope": lambda: llama_rope("dynamic")}
PROMPTS = [[3, 4, 5, 6, 7], [8, 9], [10, 11, 12], [13]]


def run_stages(model, reserve: int) -> list[torch.Tensor]:
    """Logits after each stage of a sampling / revision / search episode, in order (rows 1 and 7 are
    finished, fed masked padding, in stages 3 to 6)."""
    out = []
    with torch.inference_mode():
        logits, prefix = prefill(model, *left_pad(PROMPTS, 0, "cpu"), reserve=reserve)
        out.append(logits)
        prefix.reorder(torch.arange(12) // 3)  # 4 prompts x 3 samples
        g = torch.Generator().manual_seed(0)
        alive = torch.ones(12, 1, dtype=torch.bool)
        for step in range(6):
            token = torch.randint(3, 50, (12, 1), generator=g)
            if step == 2:
                alive[[1, 7]] = False  # two rows finished: fed masked padding from now on
            out.append(extend(model, prefix, torch.where(alive, token, 0), alive))
        block = [[20, 21, 22], [23], [24, 25], [26, 27, 28]] * 3  # feedback, left-padded
        out.append(extend(model, prefix, *left_pad(block, 0, "cpu")))
        prefix.reorder(torch.tensor([5, 0, 0, 11, 2]), reserve=7)  # a subset and a beam-style repeat; 3 + 4 to come
        for _ in range(3):
            out.append(extend(model, prefix, torch.randint(3, 50, (5, 1), generator=g)))
        out.append(extend(model, prefix, torch.randint(3, 50, (5, 4), generator=g), last_only=False))
        kind = type(prefix.cache)
    return out, kind


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("reserve", [0, 64])
def test_every_stage_matches_the_transformers_cache(name, reserve, monkeypatch):
    model = MODELS[name]()
    assert fast_decode_supported(model)
    fast, kind = run_stages(model, reserve)
    assert kind is KVBuffer
    monkeypatch.setenv(ENV_SWITCH, "0")
    slow, kind = run_stages(model, reserve)
    assert kind is not KVBuffer
    assert len(fast) == len(slow) == 12
    for stage, (a, b) in enumerate(zip(fast, slow, strict=True)):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=ATOL, rtol=0), f"stage {stage}: max diff {(a - b).abs().max():.2e}"


@pytest.mark.parametrize("name, tabulated", [("llama-mha", True), ("llama-linear-rope", True),
                                             ("llama-dynamic-rope", False)])
def test_a_position_only_rope_is_tabulated_once(name, tabulated):
    model = MODELS[name]()
    with torch.inference_mode():
        _, prefix = prefill(model, *left_pad(PROMPTS, 0, "cpu"), reserve=4)
        table = prefix.cache.rope
        extend(model, prefix, torch.full((4, 1), 9))
    assert (table is not None) is tabulated
    if tabulated:
        assert prefix.cache.rope is table and table[0].shape[0] >= 5 + 4  # made at prefill, kept


def test_a_perturbed_cache_is_detected():
    """The comparison can fail: corrupting one shared prompt column changes the samples' logits."""
    model = llama(4)
    with torch.inference_mode():
        _, prefix = prefill(model, *left_pad(PROMPTS, 0, "cpu"), reserve=8)
        prefix.reorder(torch.arange(8) // 2)
        ids = torch.full((8, 1), 9)
        clean = extend(model, prefix, ids).clone()
        _, prefix = prefill(model, *left_pad(PROMPTS, 0, "cpu"), reserve=8)
        prefix.reorder(torch.arange(8) // 2)
        prefix.cache.shared_v[0][0, :, -1] += 1.0  # prompt 0's last token
        bent = extend(model, prefix, ids)
    moved = (clean - bent).abs().amax(-1)
    assert (moved[:2] > 1e-3).all() and (moved[2:] < 1e-6).all()


def test_the_sampler_draws_the_same_tokens_either_way(monkeypatch):
    model = llama(2)
    engine = HFRolloutEngine(model, eos_token_id=2, pad_token_id=0, max_batch_sequences=16)
    prompts = [[1, 5, 6, 7], [1, 8], [1, 9, 10, 11, 12, 13]]
    fast = engine.generate(prompts, samples_per_prompt=8, max_new_tokens=12, seed=3)
    monkeypatch.setenv(ENV_SWITCH, "0")
    slow = engine.generate(prompts, samples_per_prompt=8, max_new_tokens=12, seed=3)
    assert torch.equal(fast.completion_ids_NT, slow.completion_ids_NT)
    assert torch.equal(fast.completion_mask_NT, slow.completion_mask_NT)
    assert torch.allclose(fast.logp_NT, slow.logp_NT, atol=ATOL, rtol=0)


def test_gradients_and_other_architectures_take_the_generic_path(monkeypatch):
    model = llama(4)
    with torch.enable_grad():
        _, prefix = prefill(model, *left_pad(PROMPTS, 0, "cpu"))
    assert not isinstance(prefix.cache, KVBuffer)
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=2, n_positions=64))
    assert not fast_decode_supported(gpt2)
    windowed = Qwen2ForCausalLM(Qwen2Config(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=2, num_key_value_heads=2, use_sliding_window=True,
                                            sliding_window=8, max_window_layers=0))
    assert not fast_decode_supported(windowed)
    monkeypatch.setenv(ENV_SWITCH, "0")
    assert not fast_decode_supported(model)


FINISHED_STAGES = range(3, 7)


@pytest.mark.parametrize("name", ["llama-gqa", "qwen2-bias"])
def test_a_decode_step_computes_only_the_real_rows(name, monkeypatch):
    """Compaction forced down to single rows: the real rows' logits equal transformers' cache, the finished
    rows' are zero, and the later stages (feedback fed to every row, a reorder, more steps) still match,
    so the zero columns written for the finished rows are never read."""
    model = MODELS[name]()
    picked = []

    def spy(real_B):
        rows = rows_to_compute(real_B)
        picked.append(None if rows is None else rows.tolist())
        return rows

    monkeypatch.setattr(fast_decode, "COMPACT_MIN_ROWS", 1)
    monkeypatch.setattr(fast_decode, "COMPACT_ROUND", 1)
    monkeypatch.setattr(fast_decode, "rows_to_compute", spy)
    fast, _ = run_stages(model, reserve=0)
    real = [r for r in range(12) if r not in (1, 7)]
    assert picked.count(real) == len(FINISHED_STAGES)  # the four steps with finished rows were compacted
    monkeypatch.setenv(ENV_SWITCH, "0")
    slow, _ = run_stages(model, reserve=0)
    for stage, (a, b) in enumerate(zip(fast, slow, strict=True)):
        if stage in FINISHED_STAGES:
            assert torch.equal(a[[1, 7]], torch.zeros_like(a[[1, 7]]))
            a, b = a[real], b[real]
        assert torch.allclose(a, b, atol=ATOL, rtol=0), f"stage {stage}: max diff {(a - b).abs().max():.2e}"


def test_the_rows_a_decode_step_computes():
    real = torch.zeros(64, dtype=torch.bool)
    real[[3, 10, 40]] = True
    rows = rows_to_compute(real)  # three real rows, filled up to COMPACT_MIN_ROWS with the first finished ones
    assert rows.tolist() == [*range(15), 40]  # the 13 finished rows before row 15, in order
    real[:30] = True
    rows = rows_to_compute(real)  # 31 real rows: rounded up to 32
    assert len(rows) == 32 and set(real.nonzero().squeeze(-1).tolist()) <= set(rows.tolist())
    real[:] = True
    real[5] = False
    assert rows_to_compute(real) is None  # 63 real rows would round up to all 64: nothing to save
    assert rows_to_compute(torch.ones(8, dtype=torch.bool)) is None


def test_compacted_sampling_draws_the_same_tokens(monkeypatch):
    """Sampling with rows finishing early (a random model, EOS = 2 of 50 tokens, 64 rows): compacted decode
    steps draw the tokens that computing every row draws."""
    model = llama(2)
    engine = HFRolloutEngine(model, eos_token_id=2, pad_token_id=0)
    prompts = [[1, 5, 6, 7], [1, 8], [1, 9, 10, 11, 12, 13], [1, 4]]
    compacted = []
    real_rows_to_compute = fast_decode.rows_to_compute

    def spy(real_B):
        rows = real_rows_to_compute(real_B)
        compacted.append(rows is not None)
        return rows

    monkeypatch.setattr(fast_decode, "rows_to_compute", spy)
    fast = engine.generate(prompts, samples_per_prompt=16, max_new_tokens=40, seed=3)
    assert any(compacted) and not all(compacted)
    monkeypatch.setattr(fast_decode, "COMPACT_MIN_ROWS", 10**9)
    full = engine.generate(prompts, samples_per_prompt=16, max_new_tokens=40, seed=3)
    assert torch.equal(fast.completion_ids_NT, full.completion_ids_NT)
    assert torch.equal(fast.completion_mask_NT, full.completion_mask_NT)
    assert torch.allclose(fast.logp_NT, full.logp_NT, atol=ATOL, rtol=0)


def test_a_reorder_makes_room_for_what_follows():
    """A reorder that is not a repeat gathers the shared prompt columns and the rows' own into one buffer
    with exactly ``reserve`` spare columns: what follows fits without another copy."""
    model = llama(2)
    with torch.inference_mode():
        _, prefix = prefill(model, *left_pad(PROMPTS, 0, "cpu"), reserve=2)
        prefix.reorder(torch.arange(8) // 2)
        extend(model, prefix, torch.full((8, 1), 7))
        cache = prefix.cache
        assert cache.shared_length == 5 and cache.length == 1
        prefix.reorder(torch.tensor([6, 1, 1]), reserve=4)
        assert cache.shared_k is None and cache.length == 5 + 1 and cache.capacity == 5 + 1 + 4
        storage = cache.k[0].data_ptr()
        extend(model, prefix, *left_pad([[20, 21], [22], [23, 24]], 0, "cpu"))
        extend(model, prefix, torch.full((3, 1), 9))
        extend(model, prefix, torch.full((3, 1), 9))
        assert cache.length == 10 and cache.k[0].data_ptr() == storage  # no growth
        prefix.reorder(torch.tensor([2, 0]))  # no reserve: the capacity is kept
        assert cache.capacity == 10


def test_the_buffer_grows_past_its_reservation():
    model = llama(4)
    with torch.inference_mode():
        _, prefix = prefill(model, *left_pad(PROMPTS, 0, "cpu"), reserve=0)
        prefix.reorder(torch.arange(8) // 2)
        first = prefix.cache.capacity
        for _ in range(first + 3):
            extend(model, prefix, torch.full((8, 1), 7))
        assert prefix.cache.length == first + 3 <= prefix.cache.capacity
