"""Training-time model options: dtype 'auto', gradient checkpointing, LoRA adapters (peft).

With LoRA the frozen reference policy needs no second copy of the model: pi_ref is the same module
with its adapters switched off (`peft`'s `disable_adapter()`), which is exactly the starting
checkpoint because only the adapters train. `ReferenceView` gives the loop that view as a model.
"""

from __future__ import annotations

import torch


class LoraUnavailableError(ImportError):
    """model.lora_rank > 0 but peft is not installed."""


def resolve_dtype(name: str, device: torch.device) -> str:
    """'auto' -> 'bfloat16' on a CUDA device with bf16 support, else 'float32'; other names unchanged."""
    if name != "auto":
        return name
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bfloat16"
    return "float32"


def enable_gradient_checkpointing(model) -> None:
    # Non-reentrant checkpointing works under DDP and with frozen inputs (LoRA's embeddings)
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 (the old name is deprecated)
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    # config.use_cache stays as it is (it is saved with the model); training forwards pass use_cache=False


def apply_lora(model, *, rank: int, alpha: float, dropout: float, target_modules: tuple[str, ...]):
    """Wrap `model` in a peft LoRA model; only the adapters require gradients."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise LoraUnavailableError(
            "model.lora_rank > 0 needs peft: pip install 'reweightlab[lora]' (or pip install peft)"
        ) from exc
    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in target_modules if t not in present]
    if missing:
        raise ValueError(
            f"model.lora_target_modules: {missing} not found in the model; its linear layers include "
            f"{sorted(n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear))[:8]}"
        )
    config = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
        bias="none", task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def is_lora(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "merge_and_unload")


class ReferenceView(torch.nn.Module):
    """The base model under a LoRA policy: calls run with the adapters disabled, without gradients.

    Shares every weight with the policy (no copy). Valid as pi_ref because the base weights are
    frozen under LoRA; a test checks its log-probs equal the untouched base model's.
    """

    def __init__(self, peft_model):
        super().__init__()
        self._peft = [peft_model]  # a list hides it from Module registration (no shared parameters)

    @property
    def config(self):
        return self._peft[0].config

    def get_base_model(self):
        """The wrapped transformers model (peft's name): what its forward's arguments are read from."""
        return self._peft[0].get_base_model()

    def forward(self, *args, **kwargs):
        peft_model = self._peft[0]
        was_training = peft_model.training
        peft_model.eval()  # pi_ref is evaluated without dropout, whatever the policy's mode
        try:
            with peft_model.disable_adapter(), torch.no_grad():
                return peft_model(*args, **kwargs)
        finally:
            peft_model.train(was_training)

    def reference_weights(self) -> dict:
        """The base model's weights (what pi_ref depends on), for fingerprints."""
        return {n: p for n, p in self._peft[0].named_parameters() if "lora_" not in n}

    def train(self, mode: bool = True):
        return self  # the policy's train/eval state is its own

    def eval(self):
        return self


def save_final_weights(model, tokenizer, tmp_dir, *, merge: bool, state_dict: dict | None = None) -> None:
    """Write a model folder. LoRA + merge: a plain HF model (adapters merged into a copy, the policy
    is left as it is); LoRA without merge: the adapter folder alone (peft's format)."""
    if is_lora(model) and merge:
        import copy

        merged = copy.deepcopy(model).merge_and_unload()
        merged.save_pretrained(tmp_dir, safe_serialization=True)
    else:
        kwargs = {"state_dict": state_dict} if state_dict is not None else {}
        model.save_pretrained(tmp_dir, safe_serialization=True, **kwargs)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp_dir)


def prepare_for_training(model, model_cfg):
    """Gradient checkpointing and LoRA as `model_cfg` (config.ModelConfig) asks; returns the policy."""
    if model_cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    if model_cfg.lora_rank > 0:
        model = apply_lora(
            model, rank=model_cfg.lora_rank, alpha=model_cfg.lora_alpha, dropout=model_cfg.lora_dropout,
            target_modules=model_cfg.lora_target_modules,
        )
        if model_cfg.gradient_checkpointing:
            # frozen embeddings give checkpointed blocks inputs without grad; peft's hook fixes that
            model.enable_input_require_grads()
    return model


def frozen_reference(policy):
    """pi_ref: adapters disabled on the policy itself (LoRA), else a frozen deep copy."""
    if is_lora(policy):
        return ReferenceView(policy)
    import copy

    return copy.deepcopy(policy).eval().requires_grad_(False)
