"""Load any Hugging Face causal LM folder (and its tokenizer) with clear errors."""

from __future__ import annotations

from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(ValueError):
    """A model folder that is missing, unreadable, or not a causal LM."""


def _check_folder(path: str | Path) -> Path:
    folder = Path(path)
    if not folder.exists():
        raise ModelLoadError(f"model folder {folder} does not exist")
    if not folder.is_dir():
        raise ModelLoadError(f"model path {folder} is not a folder (expected a save_pretrained folder)")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"model folder {folder} has no config.json (expected a save_pretrained folder)")
    return folder


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    folder = _check_folder(path)
    try:
        tok = AutoTokenizer.from_pretrained(folder)
    except Exception as exc:  # transformers raises many kinds; the user needs one line
        raise ModelLoadError(f"cannot load a tokenizer from {folder}: {exc}") from exc
    if tok.eos_token_id is None:
        raise ModelLoadError(f"tokenizer in {folder} has no eos_token; completions could never end")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # padding is always masked out, so any id works
    return tok


def check_causal_lm(path: str | Path) -> None:
    """ModelLoadError unless the folder's config.json names a model type that has a causal-LM head.

    Reads only config.json, so a probe or a training run can reject a wrong folder before it loads
    any weights (or any other folder's weights).
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    folder = _check_folder(path)
    try:
        config = AutoConfig.from_pretrained(folder)
    except Exception as exc:
        raise ModelLoadError(f"cannot read {folder / 'config.json'}: {exc}") from exc
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ModelLoadError(
            f"{folder} holds a {type(config).__name__} (model_type {config.model_type!r}), which is not a "
            "causal LM: AutoModelForCausalLM has no class for it"
        )


def load_model(path: str | Path, *, dtype: str = "float32", device: str | torch.device = "cpu"):
    """Load a causal LM with `AutoModelForCausalLM.from_pretrained` (safetensors)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = _check_folder(path)
    if dtype not in DTYPES:
        raise ModelLoadError(f"dtype {dtype!r} is not one of {sorted(DTYPES)}")
    try:
        config = AutoConfig.from_pretrained(folder)
    except Exception as exc:
        raise ModelLoadError(f"cannot read {folder / 'config.json'}: {exc}") from exc
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=DTYPES[dtype])
    except ValueError as exc:
        raise ModelLoadError(
            f"{folder} holds a {type(config).__name__}, which is not a causal LM: {exc}"
        ) from exc
    except Exception as exc:
        raise ModelLoadError(f"cannot load model weights from {folder}: {exc}") from exc
    return model.to(device)
