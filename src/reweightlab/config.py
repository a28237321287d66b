"""Run configuration: frozen dataclasses, loaded from YAML/TOML with `key=value` overrides.

Every field carries a one-line help string. Validation happens here and only here: an unknown key,
a wrong type, a value outside its choices, or a setting that would do nothing for the chosen method
raises `ConfigError` with one line naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OFFLINE_METHODS = ("sft", "filtered_sft", "sft_q", "iw_sft", "dft", "rwr")
RL_METHODS = ("reinforce", "rloo", "grpo")
METHODS = OFFLINE_METHODS + RL_METHODS


class ConfigError(ValueError):
    """A configuration problem, reported as one line naming the key."""


def _f(default, help: str, choices: tuple | None = None, **kw):
    meta = {"help": help}
    if choices is not None:
        meta["choices"] = choices
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default, metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


@dataclass(frozen=True)
class ModelConfig:
    path: str = _f("embedded", "a save_pretrained folder of any causal LM, or 'embedded' for the default")
    dtype: str = _f(
        "float32", "parameter dtype; 'auto' = bfloat16 on a CUDA device that supports it, else float32 "
        "(log-probs are always computed in float32)", choices=("float32", "bfloat16", "auto"),
    )
    device: str = _f("auto", "'auto' (cuda if available), 'cpu' or 'cuda[:N]'")
    gradient_checkpointing: bool = _f(False, "recompute activations in backward: less memory, ~30% more compute")
    lora_rank: int = _f(0, "LoRA rank (needs peft: pip install 'reweightlab[lora]'); 0 = full fine-tuning")
    lora_alpha: float = _f(16.0, "LoRA scale numerator: the update is (alpha / rank) * B A")
    lora_dropout: float = _f(0.0, "dropout on the LoRA branch's input")
    lora_target_modules: tuple[str, ...] = _f(
        ("q_proj", "k_proj", "v_proj", "o_proj"), "names of the linear layers that get adapters (Llama-style names)"
    )
    merge_lora: bool = _f(
        True, "final/: merge the adapters into a plain model (true) or save the adapter alone (false)"
    )


@dataclass(frozen=True)
class DistConfig:
    strategy: str = _f(
        "ddp", "data parallelism under `accelerate launch` (more than one process): replicate the model "
        "(ddp) or shard it (fsdp)", choices=("ddp", "fsdp"),
    )


@dataclass(frozen=True)
class DataConfig:
    task: str = _f("generalpoints", "registered task name")
    variant: str = _f("id", "task variant trained on (GeneralPoints: 'id' or 'ood' rule)")
    num_prompts: int = _f(512, "number of training prompts (train split)")
    source: str = _f(
        "auto",
        "offline data: 'solver' demonstrations, 'base_samples' from the reference model; "
        "'auto' picks solver for sft/dft and base_samples for the others",
        choices=("auto", "solver", "base_samples"),
    )
    demos_per_prompt: int = _f(4, "solver demonstrations per prompt (source=solver)")
    base_samples_per_prompt: int = _f(16, "samples per prompt from the reference (source=base_samples)")
    max_new_tokens: int = _f(24, "longest completion sampled, in tokens")
    # ---- a user's data file (README "Your own model and data"); each needs data.path ----
    path: str = _f("", "a .jsonl or .parquet file of prompt/completion or messages rows; replaces data.task")
    reward: str = _f(
        "", "reward function: 'module:function', 'file.py:function' or a built-in (exact_match, "
        "numeric_match[:TOL], regex[:PATTERN], math_verify); needed for RL and to score samples"
    )
    reward_timeout: float = _f(30.0, "seconds a reward call may take; past it, its samples score reward_on_error")
    reward_on_error: float = _f(0.0, "reward of a sample whose reward call raised or timed out (counted in metrics)")
    success_threshold: float = _f(1.0, "a sample is a success when its reward >= this")
    chat_template: str = _f(
        "auto", "'auto': conversational rows (messages) use the tokenizer's chat template, prompt/completion "
        "strings are used as written (TRL's convention); 'always': strings too, as a one-turn conversation",
        choices=("auto", "always"),
    )
    max_length: int = _f(0, "longest training sequence (prompt + completion) in tokens; 0 = no limit")
    overlong: str = _f(
        "truncate", "a sequence over max_length: 'truncate' keeps its first max_length tokens (RL: a prompt "
        "keeps its last max_length - max_new_tokens), 'drop' skips it; both counted",
        choices=("truncate", "drop"),
    )


@dataclass(frozen=True)
class OptimConfig:
    steps: int = _f(100, "optimizer steps")
    lr: float = _f(1e-4, "peak learning rate (AdamW)")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    betas: tuple[float, float] = _f((0.9, 0.95), "AdamW betas")
    schedule: str = _f("constant", "learning-rate schedule after warm-up", choices=("constant", "cosine"))
    warmup_steps: int = _f(0, "linear warm-up steps")
    max_grad_norm: float = _f(1.0, "gradient clipping by global norm (0 disables)")
    sequences_per_step: int = _f(128, "sequences per optimizer step (offline methods)")
    sequences_per_microbatch: int = _f(128, "sequences per forward/backward (gradient accumulation)")
    reduction: str = _f(
        "token_mean", "loss reduction", choices=("token_mean", "seq_mean", "sum_over_constant")
    )


@dataclass(frozen=True)
class OfflineConfig:
    threshold: float = _f(5.0, "filtered SFT / iw-SFT: keep samples with reward >= threshold")
    quality_thresholds: tuple[float, ...] = _f(
        (), "SFT(Q): increasing score thresholds c_1 < ... < c_C; weight = number cleared (S > c_i)"
    )
    quality_mode: str = _f(
        "multiplicity", "SFT(Q): levels as sampling multiplicity or as a loss weight",
        choices=("multiplicity", "weight"),
    )
    iw_preset: str = _f("llm", "iw-SFT preset", choices=("llm", "llm-token", "control"))
    rwr_beta: float = _f(1.0, "RWR temperature: weight exp(r/beta), normalised over the batch")


@dataclass(frozen=True)
class RLConfig:
    prompts_per_step: int = _f(32, "prompts sampled per batch")
    samples_per_prompt: int = _f(8, "on-policy samples per prompt (G)")
    epochs_per_batch: int = _f(1, "passes over each sampled batch")
    minibatches_per_epoch: int = _f(1, "optimizer steps per pass over the batch")
    clip_eps_low: float = _f(0.2, "clipped surrogate: lower epsilon (ratio >= 1 - eps_low)")
    clip_eps_high: float = _f(0.2, "clipped surrogate: upper epsilon (ratio <= 1 + eps_high)")
    adv_std: str = _f(
        "auto", "advantage std scaling; auto = group for grpo, none otherwise",
        choices=("auto", "group", "batch", "none"),
    )
    kl_beta: float = _f(0.0, "weight of the KL(pi || pi_ref) penalty in the loss")
    kl_estimator: str = _f(
        "k2",
        "KL estimator used as a loss term (kl_mode=loss). Its gradient is what matters: k2's expectation is "
        "grad KL(pi||pi_ref); k3's is grad KL(pi_ref||pi), the reverse KL (GRPO's choice); k1's is 0",
        choices=("k1", "k2", "k3"),
    )
    kl_mode: str = _f(
        "loss",
        "where the KL penalty enters: 'loss' adds beta*k(logp, logp_ref) per token; 'reward' subtracts "
        "beta * sum_t k1 (detached) from each sequence's reward before the advantage",
        choices=("loss", "reward"),
    )
    temperature: float = _f(1.0, "sampling temperature")
    top_p: float = _f(1.0, "nucleus sampling mass")


@dataclass(frozen=True)
class TrainConfig:
    method: str = _f("sft", "training method", choices=METHODS)
    output_dir: str = _f("runs/train", "run folder (created; must not already hold a finished run)")
    seed: int = _f(0, "seed for data, sampling and initialisation")
    checkpoint_every: int = _f(0, "save a checkpoint every N steps (0: only the final model)")
    log_every: int = _f(1, "write a metrics line every N steps")
    model: ModelConfig = _f(ModelConfig(), "policy and reference model")
    data: DataConfig = _f(DataConfig(), "task and data")
    optim: OptimConfig = _f(OptimConfig(), "optimizer and batch plan")
    offline: OfflineConfig = _f(OfflineConfig(), "offline-method settings")
    rl: RLConfig = _f(RLConfig(), "online RL settings")
    dist: DistConfig = _f(DistConfig(), "multi-process training (accelerate launch)")

    @property
    def is_rl(self) -> bool:
        return self.method in RL_METHODS

    def resolved_source(self) -> str:
        """Where training sequences come from: 'online', 'solver' or 'base_samples'."""
        if self.is_rl:
            return "online"
        if self.data.source != "auto":
            return self.data.source
        if self.data.path:  # 'file': the rows of data.path (their completions, and scores where needed)
            return "file"
        return "solver" if self.method in ("sft", "dft") else "base_samples"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


# ---- which user-set keys mean something for which method -------------------------------------
# A key the user set explicitly that the chosen method never reads is an error, not a silent no-op.
_KEY_METHODS: dict[str, tuple[str, ...]] = {
    "offline.threshold": ("filtered_sft", "iw_sft"),
    "offline.quality_thresholds": ("sft_q", "iw_sft"),
    "offline.quality_mode": ("sft_q", "iw_sft"),
    "offline.iw_preset": ("iw_sft",),
    "offline.rwr_beta": ("rwr",),
    "data.source": OFFLINE_METHODS,
    "data.demos_per_prompt": OFFLINE_METHODS,
    "data.base_samples_per_prompt": OFFLINE_METHODS,
    "optim.sequences_per_step": OFFLINE_METHODS,
}
for _name in (f.name for f in dataclasses.fields(RLConfig)):
    _KEY_METHODS[f"rl.{_name}"] = RL_METHODS


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp, key: str, choices: tuple | None):
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        inner = args[0]
        if len(args) != 2 or args[1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"config key '{key}': expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, inner, key, None) for v in value)
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"config key '{key}': unsupported type")  # not used by any field
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            value = value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected true or false, got {value!r}")
    elif tp is int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    if choices is not None and value not in choices:
        raise ConfigError(f"config key '{key}': {value!r} is not one of {', '.join(map(str, choices))}")
    return value


def _build(cls, raw: dict, prefix: str = ""):
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        full = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key '{full}'; allowed: {', '.join(fields)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(f"config key '{full}': expected a section (mapping), got {value!r}")
            kwargs[key] = _build(tp, value, full + ".")
        else:
            kwargs[key] = _coerce(value, tp, full, fields[key].metadata.get("choices"))
    return cls(**kwargs)


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = d
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"config key '{key}': '{p}' is not a section")
        node = nxt
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> dict:
    """`key.sub=value` strings to a nested dict (values parsed as YAML scalars/lists)."""
    import yaml

    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        _set_dotted(out, key.strip(), value)
    return out


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def read_config_file(path: str | Path) -> dict:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file into a dict, with a clear error."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"config file {p}: expected a .yaml, .yml or .toml file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {p} is not valid: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: expected a mapping at the top level")
    return data


def config_from_dict(raw: dict) -> TrainConfig:
    """Build and validate a TrainConfig from a (possibly partial) nested dict."""
    cfg = _build(TrainConfig, raw)
    _validate(cfg, set(_flatten(raw)))
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    raw = read_config_file(path) if path else {}
    return config_from_dict(_merge(raw, parse_overrides(overrides or [])))


def _validate(cfg: TrainConfig, user_keys: set[str]) -> None:
    for key in sorted(user_keys):
        allowed = _KEY_METHODS.get(key)
        if allowed is not None and cfg.method not in allowed:
            raise ConfigError(
                f"config key '{key}' does nothing for method '{cfg.method}'; it applies to: {', '.join(allowed)}"
            )
    positive = {
        "optim.steps": cfg.optim.steps, "optim.sequences_per_step": cfg.optim.sequences_per_step,
        "optim.sequences_per_microbatch": cfg.optim.sequences_per_microbatch,
        "data.num_prompts": cfg.data.num_prompts, "data.max_new_tokens": cfg.data.max_new_tokens,
        "data.demos_per_prompt": cfg.data.demos_per_prompt,
        "data.base_samples_per_prompt": cfg.data.base_samples_per_prompt,
        "rl.prompts_per_step": cfg.rl.prompts_per_step, "rl.samples_per_prompt": cfg.rl.samples_per_prompt,
        "rl.epochs_per_batch": cfg.rl.epochs_per_batch, "rl.minibatches_per_epoch": cfg.rl.minibatches_per_epoch,
        "log_every": cfg.log_every,
    }
    for key, v in positive.items():
        if v < 1:
            raise ConfigError(f"config key '{key}': must be >= 1, got {v}")
    _check_range("optim.lr", cfg.optim.lr, lo=0.0, lo_open=True)
    _check_range("optim.max_grad_norm", cfg.optim.max_grad_norm, lo=0.0)
    _check_range("optim.weight_decay", cfg.optim.weight_decay, lo=0.0)
    _check_range("rl.temperature", cfg.rl.temperature, lo=0.0, lo_open=True)
    _check_range("rl.top_p", cfg.rl.top_p, lo=0.0, hi=1.0, lo_open=True)
    _check_range("rl.kl_beta", cfg.rl.kl_beta, lo=0.0)
    _check_range("rl.clip_eps_low", cfg.rl.clip_eps_low, lo=0.0, hi=1.0)
    _check_range("rl.clip_eps_high", cfg.rl.clip_eps_high, lo=0.0)
    _check_range("offline.rwr_beta", cfg.offline.rwr_beta, lo=0.0, lo_open=True)
    if cfg.checkpoint_every < 0:
        raise ConfigError(f"config key 'checkpoint_every': must be >= 0, got {cfg.checkpoint_every}")
    if cfg.optim.warmup_steps < 0 or cfg.optim.warmup_steps >= cfg.optim.steps:
        raise ConfigError(
            f"config key 'optim.warmup_steps': must be in [0, optim.steps), got {cfg.optim.warmup_steps}"
        )
    _validate_method(cfg, user_keys)
    _validate_model(cfg, user_keys)
    _validate_data_file(cfg, user_keys)


_FILE_KEYS = ("data.reward", "data.reward_timeout", "data.reward_on_error", "data.success_threshold",
              "data.max_length", "data.overlong", "data.chat_template")


def _validate_data_file(cfg: TrainConfig, user_keys: set[str]) -> None:
    """data.path and the keys that only a data file gives meaning to."""
    d, source = cfg.data, cfg.resolved_source()
    if not d.path:
        for key in sorted(set(_FILE_KEYS) & user_keys):
            raise ConfigError(f"config key '{key}' does nothing without data.path (a .jsonl or .parquet file)")
        return
    if not d.path.lower().endswith((".jsonl", ".json", ".parquet")):
        raise ConfigError(f"config key 'data.path': expected a .jsonl or .parquet file, got {d.path!r}")
    if "data.task" in user_keys:
        raise ConfigError("config key 'data.task' does nothing when data.path is set (the file is the task)")
    if source == "solver":
        raise ConfigError("config key 'data.source': with data.path, offline methods train on the file's rows "
                          "(leave data.source auto) or on base_samples")
    if source in ("online", "base_samples") and not d.reward:
        raise ConfigError(f"config key 'data.reward' is needed: {'RL' if cfg.is_rl else 'base_samples'} scores "
                          "samples of data.path's prompts with it (module:function or a built-in)")
    if source == "file":
        for key in ("data.success_threshold", "data.num_prompts"):
            if key in user_keys:
                raise ConfigError(f"config key '{key}' does nothing when training on data.path's rows")
        if cfg.method in ("sft", "dft") and "data.reward" in user_keys:
            raise ConfigError(
                f"config key 'data.reward' does nothing for {cfg.method}: it trains on the file's completions"
            )
    for key in ("data.reward_timeout", "data.reward_on_error"):
        if key in user_keys and not d.reward:
            raise ConfigError(f"config key '{key}' does nothing without data.reward")
    if "data.overlong" in user_keys and d.max_length == 0:
        raise ConfigError("config key 'data.overlong' does nothing with data.max_length = 0 (no limit)")
    _check_range("data.reward_timeout", d.reward_timeout, lo=0.0, lo_open=True)
    if d.max_length < 0:
        raise ConfigError(f"config key 'data.max_length': must be >= 0, got {d.max_length}")
    if source in ("online", "base_samples") and d.max_length and d.max_length <= d.max_new_tokens:
        raise ConfigError(f"config key 'data.max_length': {d.max_length} leaves no room for a prompt before "
                          f"data.max_new_tokens = {d.max_new_tokens} sampled tokens")


def _validate_method(cfg: TrainConfig, user_keys: set[str]) -> None:
    q = cfg.offline.quality_thresholds
    if any(b <= a for a, b in zip(q, q[1:], strict=False)):
        raise ConfigError(f"config key 'offline.quality_thresholds': must be strictly increasing, got {list(q)}")
    if cfg.method == "sft_q" and not q:
        raise ConfigError("config key 'offline.quality_thresholds': method 'sft_q' needs at least one threshold")
    if cfg.method in ("sft", "dft") and cfg.data.source == "base_samples":
        raise ConfigError(f"config key 'data.source': method '{cfg.method}' trains on demonstrations ('solver')")
    if cfg.method in ("filtered_sft", "sft_q", "iw_sft", "rwr") and cfg.data.source == "solver":
        raise ConfigError(
            f"config key 'data.source': method '{cfg.method}' needs scored samples ('base_samples')"
        )
    if "data.demos_per_prompt" in user_keys and cfg.resolved_source() != "solver":
        raise ConfigError("config key 'data.demos_per_prompt' does nothing unless data.source is 'solver'")
    if "data.base_samples_per_prompt" in user_keys and cfg.resolved_source() != "base_samples":
        raise ConfigError("config key 'data.base_samples_per_prompt' does nothing unless data.source is 'base_samples'")
    if cfg.is_rl:
        single_pass = cfg.rl.epochs_per_batch == 1 and cfg.rl.minibatches_per_epoch == 1
        if single_pass and ({"rl.clip_eps_low", "rl.clip_eps_high"} & user_keys):
            raise ConfigError(
                "config key 'rl.clip_eps_*' does nothing with one epoch and one minibatch per batch "
                "(on-policy the ratio is 1); raise rl.epochs_per_batch or rl.minibatches_per_epoch"
            )
        for key in ("rl.kl_estimator", "rl.kl_mode"):
            if key in user_keys and cfg.rl.kl_beta == 0:
                raise ConfigError(f"config key '{key}' does nothing with rl.kl_beta = 0")
        if "rl.kl_estimator" in user_keys and cfg.rl.kl_mode == "reward":
            raise ConfigError("config key 'rl.kl_estimator' does nothing with rl.kl_mode = reward (k1 is used)")
        if cfg.method == "rloo" and cfg.rl.samples_per_prompt < 2:
            raise ConfigError("config key 'rl.samples_per_prompt': rloo needs at least 2 samples per prompt")
        if cfg.method == "grpo" and cfg.rl.samples_per_prompt < 2:
            raise ConfigError("config key 'rl.samples_per_prompt': grpo needs at least 2 samples per prompt")
        n = cfg.rl.prompts_per_step * cfg.rl.samples_per_prompt
        if n % cfg.rl.minibatches_per_epoch:
            raise ConfigError(
                f"config key 'rl.minibatches_per_epoch': {cfg.rl.minibatches_per_epoch} does not divide "
                f"the {n} sequences of a batch"
            )


def _validate_model(cfg: TrainConfig, user_keys: set[str]) -> None:
    m = cfg.model
    if m.lora_rank < 0:
        raise ConfigError(f"config key 'model.lora_rank': must be >= 0, got {m.lora_rank}")
    if m.lora_rank == 0:
        for key in ("model.lora_alpha", "model.lora_dropout", "model.lora_target_modules", "model.merge_lora"):
            if key in user_keys:
                raise ConfigError(f"config key '{key}' does nothing with model.lora_rank = 0 (full fine-tuning)")
        return
    _check_range("model.lora_alpha", m.lora_alpha, lo=0.0, lo_open=True)
    if not 0.0 <= m.lora_dropout < 1.0:
        raise ConfigError(f"config key 'model.lora_dropout': must be in [0, 1), got {m.lora_dropout}")
    if not m.lora_target_modules:
        raise ConfigError("config key 'model.lora_target_modules': needs at least one module name")


def _check_range(key: str, v: float, lo=None, hi=None, lo_open=False) -> None:
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(f"config key '{key}': must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and v > hi:
        raise ConfigError(f"config key '{key}': must be <= {hi}, got {v}")


def resolved_adv_std(cfg: TrainConfig) -> str:
    if cfg.rl.adv_std != "auto":
        return cfg.rl.adv_std
    return "group" if cfg.method == "grpo" else "none"


def describe_fields(cls=TrainConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, help) for every field: used by `reweightlab train --help-config`."""
    rows = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(describe_fields(tp, f"{prefix}{f.name}."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_ = f.metadata.get("help", "")
        if "choices" in f.metadata:
            help_ += f" [{'|'.join(map(str, f.metadata['choices']))}]"
        rows.append((f"{prefix}{f.name}", repr(default), help_))
    return rows
