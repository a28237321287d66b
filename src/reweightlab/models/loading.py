"""Load any Hugging Face causal LM folder (and its tokenizer) with clear errors."""

from __future__ import annotations

from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(ValueError):
    """A model folder that is missing, unreadable, or not a causal LM."""


def _check_folder(path: str | Path) -> Path:
    """The folder, if it is one we will read: a config.json that names no custom code of its own.

    A model folder is data, never code: ``trust_remote_code`` is always False, and a folder whose
    config.json (or tokenizer_config.json) maps classes to its own Python files (``auto_map``) is
    refused up front, instead of transformers asking on a terminal whether to run them."""
    import json

    folder = Path(path)
    if not folder.exists():
        raise ModelLoadError(f"model folder {folder} does not exist")
    if not folder.is_dir():
        raise ModelLoadError(f"model path {folder} is not a folder (expected a save_pretrained folder)")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"model folder {folder} has no config.json (expected a save_pretrained folder)")
    for name in ("config.json", "tokenizer_config.json"):
        if not (folder / name).is_file():
            continue
        try:
            raw = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"cannot read {folder / name}: {exc}") from None
        if isinstance(raw, dict) and raw.get("auto_map"):
            raise ModelLoadError(f"{folder / name} names custom code (auto_map); reweightlab never runs code from a "
                                 "model folder: use a model whose architecture transformers ships")
    return folder


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    folder = _check_folder(path)
    try:
        tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
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
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except Exception as exc:
        raise ModelLoadError(f"cannot read {folder / 'config.json'}: {exc}") from exc
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ModelLoadError(
            f"{folder} holds a {type(config).__name__} (model_type {config.model_type!r}), which is not a "
            "causal LM: AutoModelForCausalLM has no class for it"
        )


def load_model(path: str | Path, *, dtype: str = "float32", device: str | torch.device = "cpu"):
    """Load a causal LM with `AutoModelForCausalLM.from_pretrained`, strictly.

    Only safetensors weights (a pickle file can run code when unpickled); no remote code; and every
    tensor the architecture expects must be in the files: a missing, unexpected or mis-shaped tensor
    (a truncated checkpoint, or a config of another architecture) is an error, never a silently
    random-initialised layer."""
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = _check_folder(path)
    if dtype not in DTYPES:
        raise ModelLoadError(f"dtype {dtype!r} is not one of {sorted(DTYPES)}")
    check_causal_lm(folder)
    if not any(folder.glob("*.safetensors")):
        pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt"))
        extra = (f" ({', '.join(pickles)} are pickle files, which are never loaded: they can run code)"
                 if pickles else "")
        raise ModelLoadError(f"{folder} holds no .safetensors weights{extra}; save the model with save_pretrained "
                             "(safetensors is its default)")
    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=False)
    except Exception as exc:
        raise ModelLoadError(f"cannot read {folder / 'config.json'}: {exc}") from exc
    try:
        model, info = AutoModelForCausalLM.from_pretrained(
            folder, dtype=DTYPES[dtype], trust_remote_code=False, use_safetensors=True, output_loading_info=True)
    except ValueError as exc:
        raise ModelLoadError(
            f"{folder} holds a {type(config).__name__}, which is not a causal LM: {exc}"
        ) from exc
    except Exception as exc:
        if "ignore_mismatched_sizes" in str(exc):
            raise ModelLoadError(f"{folder}: the weights do not match its {type(config).__name__}: tensor(s) with the "
                                 "wrong shape; nothing is initialised at random") from None
        raise ModelLoadError(f"cannot load model weights from {folder}: {exc}") from exc
    problems = []
    for what, keys in (("missing", info.get("missing_keys")), ("unexpected", info.get("unexpected_keys")),
                       ("with the wrong shape", info.get("mismatched_keys"))):
        names = sorted(str(k if isinstance(k, str) else k[0]) for k in (keys or ()))
        if names:
            more = ", ..." if len(names) > 3 else ""
            problems.append(f"{len(names)} tensor(s) {what} ({', '.join(names[:3])}{more})")
    if problems:
        raise ModelLoadError(f"{folder}: the weights do not match its {type(config).__name__}: {'; '.join(problems)}; "
                             "nothing is initialised at random")
    bad = first_non_finite(model)
    if bad is not None:
        raise ModelLoadError(f"{folder}: tensor {bad[0]} holds {bad[1]} non-finite value(s) (nan or inf): the weights "
                             "are corrupt, or came from a run that diverged")
    return model.to(device)


def first_non_finite(model) -> tuple[str, int] | None:
    """(name, count) of the first floating-point parameter or buffer holding nan or inf, else None.
    One reduction per tensor, summed on the host once: a load or a save pays one pass over the weights."""
    named = [(n, t) for n, t in (*model.named_parameters(), *model.named_buffers()) if t.is_floating_point()]
    if not named:
        return None
    with torch.no_grad():
        counts = torch.stack([(~torch.isfinite(t)).sum() for _, t in named]).tolist()
    for (name, _), count in zip(named, counts, strict=True):
        if count:
            return name, int(count)
    return None
