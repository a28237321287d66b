"""Model options of issue 5: gradient checkpointing, bf16, LoRA (peft), and the reference log-prob cache."""

import json

import pytest
import torch

from reweightlab.config import ConfigError
from reweightlab.data.store import SequenceStore, microbatches
from reweightlab.models import load_model, load_tokenizer
from reweightlab.models.adapters import (
    ReferenceView,
    apply_lora,
    enable_gradient_checkpointing,
    resolve_dtype,
)
from reweightlab.models.forward import _cache_kwarg, forward_logits_logp, store_logp, teacher_forced_logp
from reweightlab.models.saving import save_model_atomic
from reweightlab.train import refcache
from reweightlab.train.config import load_config
from reweightlab.train.loop import train


def _store(seed=0, n=6):
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(4, 60, (3,), generator=g).tolist() for _ in range(n)]
    comps = [torch.randint(4, 60, (2 + i % 4,), generator=g).tolist() for i in range(n)]
    return SequenceStore.from_lists(prompts, comps, pad_id=0)


def _loss_and_grads(model, store):
    (mb,) = microbatches(store, len(store))
    _, logp = forward_logits_logp(model, mb)
    loss = -(logp * mb.mask_BT).sum() / mb.mask_BT.sum()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def _overrides(model_dir, out, *extra):
    return [f"model.path={model_dir}", f"output_dir={out}", "optim.steps=2", "data.num_prompts=8",
            "data.max_new_tokens=12", "optim.sequences_per_step=16", "optim.sequences_per_microbatch=8",
            *extra]


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_model_dir):
    store = _store()
    plain = load_model(tiny_model_dir).train()
    ckpt = load_model(tiny_model_dir).train()
    enable_gradient_checkpointing(ckpt)
    assert any(getattr(m, "gradient_checkpointing", False) for m in ckpt.modules())
    loss_a, grads_a = _loss_and_grads(plain, store)
    loss_b, grads_b = _loss_and_grads(ckpt, store)
    assert torch.allclose(loss_a, loss_b, atol=1e-5)
    for name, g in grads_a.items():
        assert torch.allclose(g, grads_b[name], atol=1e-5), name


def test_dtype_auto_is_float32_on_cpu():
    assert resolve_dtype("auto", torch.device("cpu")) == "float32"
    assert resolve_dtype("bfloat16", torch.device("cpu")) == "bfloat16"


def test_bf16_training_on_cpu_runs_with_finite_loss(tiny_model_dir, tmp_path):
    out = tmp_path / "bf16"
    train(load_config(None, _overrides(tiny_model_dir, out, "model.dtype=bfloat16", "model.device=cpu",
                                       "model.gradient_checkpointing=true")),
          progress=False, log=lambda *_: None)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 2 and all(torch.isfinite(torch.tensor(r["loss"])) for r in lines)
    from safetensors import safe_open

    with safe_open(str(out / "final" / "model.safetensors"), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}  # trained and saved in bf16


def test_lora_config_errors():
    with pytest.raises(ConfigError, match="lora_alpha"):
        load_config(None, ["model.lora_alpha=8"])
    with pytest.raises(ConfigError, match="merge_lora"):
        load_config(None, ["model.merge_lora=false"])
    with pytest.raises(ConfigError, match="lora_rank"):
        load_config(None, ["model.lora_rank=-1"])


def test_lora_unknown_target_module_is_an_error(tiny_model_dir):
    with pytest.raises(ValueError, match="c_attn"):
        apply_lora(load_model(tiny_model_dir), rank=2, alpha=4.0, dropout=0.0, target_modules=("c_attn",))


def _perturbed_lora(model_dir):
    peft_model = apply_lora(load_model(model_dir), rank=4, alpha=8.0, dropout=0.0,
                            target_modules=("q_proj", "v_proj"))
    with torch.no_grad():  # lora_B starts at 0 (no change); make the adapters matter
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    return peft_model.eval()


def test_lora_reference_is_the_base_model(tiny_model_dir):
    base = load_model(tiny_model_dir).eval()
    peft_model = _perturbed_lora(tiny_model_dir)
    ids = _store().ids_NL
    ref_logits = _logits(ReferenceView(peft_model), ids)
    assert torch.allclose(ref_logits, _logits(base, ids), atol=1e-6)
    assert not torch.allclose(_logits(peft_model, ids), ref_logits, atol=1e-3)  # adapters are on again


def test_lora_reference_in_a_cached_pass_is_the_base_model(tiny_model_dir):
    """The reference's shared-prompt pass (store_logp: prefill + extend through the wrapper) gives the
    base model's log-probs, and passes the cache under the argument name the wrapped model takes."""
    base = load_model(tiny_model_dir).eval()
    view = ReferenceView(_perturbed_lora(tiny_model_dir))
    assert _cache_kwarg(view) == _cache_kwarg(base)
    store = SequenceStore.from_lists([[5, 6, 7]] * 3 + [[8, 9]] * 2, [[10, 11], [12], [13, 14, 15], [16], [17, 18]],
                                     pad_id=0)
    want = teacher_forced_logp(base, microbatches(store, 8), len(store), store.ids_NL.shape[1], "cpu")
    got = store_logp(view, store, "cpu")
    assert (got - want).abs().max() <= 2e-5
    assert (store_logp(view.get_base_model(), store, "cpu") - want).abs().max() > 1e-3  # adapters on: differs


def test_lora_merge_and_save_writes_a_plain_model(tiny_model_dir, tmp_path):
    peft_model = _perturbed_lora(tiny_model_dir)
    ids = _store().ids_NL
    expected = _logits(peft_model, ids)
    save_model_atomic(peft_model, load_tokenizer(tiny_model_dir), tmp_path / "merged", merge_lora=True)
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    merged = load_model(tmp_path / "merged").eval()
    assert not any("lora" in n for n, _ in merged.named_parameters())
    assert torch.allclose(_logits(merged, ids), expected, atol=1e-4)
    assert torch.allclose(_logits(peft_model, ids), expected)  # merging worked on a copy
    save_model_atomic(peft_model, None, tmp_path / "adapter", merge_lora=False)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()


def test_lora_sft_trains_only_the_adapters(tiny_model_dir, tmp_path):
    out = tmp_path / "lora"
    cfg = load_config(None, _overrides(tiny_model_dir, out, "method=sft", "model.lora_rank=4", "optim.lr=0.05",
                                       "model.lora_target_modules=[q_proj,v_proj]"))
    train(cfg, progress=False, log=lambda *_: None)
    before = load_model(tiny_model_dir).state_dict()
    after = load_model(out / "final").state_dict()  # merged: a plain HF folder
    assert set(after) == set(before)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "LoRA training changed nothing"
    # merged adapters touch exactly the targeted projections; everything else is the base's
    assert all(k.endswith(("q_proj.weight", "v_proj.weight")) for k in changed), sorted(changed)


def test_iw_sft_reference_logp_computed_once_and_cached(tiny_model_dir, tmp_path, monkeypatch):
    calls = []
    real = refcache.teacher_forced_logp

    def counting(model, mbs, N, L, device):
        calls.append(N)
        return real(model, mbs, N, L, device)

    monkeypatch.setattr(refcache, "teacher_forced_logp", counting)
    out = tmp_path / "iw"
    # 8 prompts x 4 samples = 32 sequences; 5 steps x 16 = 80 sequences: 2.5 passes over the data
    cfg = load_config(None, _overrides(tiny_model_dir, out, "method=iw_sft", "offline.threshold=-3",
                                       "data.base_samples_per_prompt=4", "optim.steps=5"))
    train(cfg, progress=False, log=lambda *_: None)
    assert calls == [32], "the reference pass must run once per dataset, not per epoch or step"
    cache = out / refcache.CACHE_NAME
    assert cache.is_file()

    ref, store = load_model(tiny_model_dir), _store()
    first = refcache.reference_logp(tmp_path / "again", store, ref, sequences_per_microbatch=4, device="cpu")
    again = refcache.reference_logp(tmp_path / "again", store, ref, sequences_per_microbatch=4, device="cpu")
    assert len(calls) == 2 and torch.equal(first, again)  # second call read the file
    changed = _store(seed=1)
    refcache.reference_logp(tmp_path / "again", changed, ref, sequences_per_microbatch=4, device="cpu")
    assert len(calls) == 3  # other data: recomputed
    with torch.no_grad():
        next(ref.parameters()).add_(0.01)
    refcache.reference_logp(tmp_path / "again", changed, ref, sequences_per_microbatch=4, device="cpu")
    assert len(calls) == 4  # another reference model: recomputed


def test_lora_grpo_uses_the_base_as_reference(tiny_model_dir, tmp_path):
    """LoRA's B starts at 0, so at the first update the policy is the base: the KL to the reference (the
    same module with adapters disabled) is 0; after updates the adapters move the policy away from it."""
    out = tmp_path / "lora-grpo"
    cfg = load_config(None, [
        f"model.path={tiny_model_dir}", f"output_dir={out}", "method=grpo", "data.task=digits", "optim.steps=3",
        "data.num_prompts=8", "data.max_new_tokens=10", "rl.prompts_per_step=4", "rl.samples_per_prompt=4",
        "rl.kl_beta=0.1", "model.lora_rank=4", "optim.lr=0.05", "model.merge_lora=false",
    ])
    train(cfg, progress=False, log=lambda *_: None)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert abs(lines[0]["kl"]) < 1e-6
    assert lines[-1]["kl"] > 1e-6
    assert (out / "final" / "adapter_config.json").is_file()  # merge_lora=false: the adapter alone
