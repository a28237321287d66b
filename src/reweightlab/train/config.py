"""The configuration of `reweightlab train`: its sections, and the checks that span keys.

Built with the package's one mechanism (reweightlab.config): YAML/TOML and `key=value` overrides,
every field with a one-line help string. The choices of ``method`` and which keys each method reads
come from the method records in algos/ (algos/method.py), so adding a method never edits this file.
A key the user set that the chosen method never reads, or a setting that would do nothing, raises
``ConfigError`` with one line naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reweightlab.algos import METHODS, OFFLINE_METHODS, get_method
from reweightlab.config import ConfigError, build, check_device, describe, flatten, load, unmet_needs, value_at
from reweightlab.config import setting as _f
from reweightlab.math import IW_PRESETS, KL_ESTIMATORS, REDUCTIONS, STD_SCALINGS
from reweightlab.rollout.search import SearchBudget
from reweightlab.tasks import get_task
from reweightlab.tasks.hooks import has_feedback

_LORA = {"needs": "model.lora_rank", "why": "(full fine-tuning)"}
_FILE = {"needs": "data.path", "why": "(a .jsonl or .parquet file)"}


@dataclass(frozen=True)
class ModelConfig:
    path: str = _f("embedded", "a save_pretrained folder of any causal LM, or 'embedded' for the default")
    ref_path: str = _f("", "the frozen reference pi_ref of the KL penalty and iw-SFT: a model folder; '' = the "
                           "starting model (model.path), even when that is a checkpoint of another run")
    dtype: Literal["float32", "bfloat16", "auto"] = _f(
        "float32", "parameter dtype; 'auto' = bfloat16 on a CUDA device that supports it, else float32 "
        "(log-probs are always computed in float32)",
    )
    device: str = _f("auto", "'auto' (cuda if available), 'cpu' or 'cuda[:N]'")
    gradient_checkpointing: bool = _f(False, "recompute activations in backward: less memory, ~30% more compute")
    lora_rank: int = _f(0, "LoRA rank (needs peft: pip install 'reweightlab[lora]'); 0 = full fine-tuning")
    lora_alpha: float = _f(16.0, "LoRA scale numerator: the update is (alpha / rank) * B A", **_LORA)
    lora_dropout: float = _f(0.0, "dropout on the LoRA branch's input", **_LORA)
    lora_target_modules: tuple[str, ...] = _f(
        ("q_proj", "k_proj", "v_proj", "o_proj"), "names of the linear layers that get adapters (Llama-style names)",
        **_LORA,
    )
    merge_lora: bool = _f(
        True, "final/: merge the adapters into a plain model (true) or save the adapter alone (false)", **_LORA,
    )


@dataclass(frozen=True)
class DistConfig:
    strategy: Literal["ddp", "fsdp"] = _f(
        "ddp", "data parallelism under `accelerate launch` (more than one process): replicate the model "
        "(ddp) or shard it (fsdp)",
    )


@dataclass(frozen=True)
class DataConfig:
    # ---- a registered task (data.path empty) ----
    task: str = _f("generalpoints", "registered task name")
    variant: str = _f("id", "task variant trained on (GeneralPoints: 'id' or 'ood' rule)")
    num_prompts: int = _f(512, "number of training prompts (train split)")
    source: Literal["auto", "solver", "base_samples"] = _f(
        "auto",
        "offline data: 'solver' demonstrations, 'base_samples' from the reference model; "
        "'auto' picks the method's own (solver for sft/dft, base_samples for scored methods, a data file's rows)",
    )
    demos_per_prompt: int = _f(4, "solver demonstrations per prompt (source=solver)")
    base_samples_per_prompt: int = _f(16, "samples per prompt from the reference (source=base_samples)")
    max_new_tokens: int = _f(24, "longest completion sampled, in tokens")
    # ---- a user's data file (README "Your own model and data"): each needs data.path ----
    path: str = _f("", "a .jsonl or .parquet file of prompt/completion or messages rows; replaces data.task")
    reward: str = _f(
        "", "reward function: 'module:function', 'file.py:function' or a built-in (exact_match, "
        "numeric_match[:TOL], regex[:PATTERN], math_verify); needed for RL and to score samples", **_FILE,
    )
    reward_timeout: float = _f(30.0, "seconds a reward call may take; past it, its samples score reward_on_error",
                               needs="data.reward")
    reward_on_error: float = _f(0.0, "reward of a sample whose reward call raised or timed out (counted in metrics)",
                                needs="data.reward")
    success_threshold: float = _f(1.0, "a sample is a success when its reward >= this", **_FILE)
    chat_template: Literal["auto", "always"] = _f(
        "auto", "'auto': conversational rows (messages) use the tokenizer's chat template, prompt/completion "
        "strings are used as written (TRL's convention); 'always': strings too, as a one-turn conversation", **_FILE,
    )
    max_length: int = _f(0, "longest training sequence (prompt + completion) in tokens; 0 = no limit", **_FILE)
    overlong: Literal["truncate", "drop"] = _f(
        "truncate", "a sequence over max_length: 'truncate' keeps its first max_length tokens (RL: a prompt "
        "keeps its last max_length - max_new_tokens), 'drop' skips it; both counted",
        needs="data.max_length", why="(no limit)",
    )


@dataclass(frozen=True)
class OptimConfig:
    steps: int = _f(100, "optimizer steps")
    lr: float = _f(1e-4, "peak learning rate (AdamW)")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    betas: tuple[float, float] = _f((0.9, 0.95), "AdamW betas")
    schedule: Literal["constant", "cosine"] = _f("constant", "learning-rate schedule after warm-up")
    warmup_steps: int = _f(0, "linear warm-up steps")
    max_grad_norm: float = _f(1.0, "gradient clipping by global norm (0 disables)")
    sequences_per_step: int = _f(128, "sequences per optimizer step (offline methods)")
    sequences_per_microbatch: int = _f(128, "sequences per forward/backward (gradient accumulation)")
    reduction: str = _f("token_mean", "loss reduction", choices=REDUCTIONS)


@dataclass(frozen=True)
class OfflineConfig:
    threshold: float | None = _f(None, "filtered SFT / iw-SFT: keep samples with reward >= threshold (default: "
                                       "the task's success score; data.success_threshold for a data file)")
    quality_thresholds: tuple[float, ...] = _f(
        (), "SFT(Q): increasing score thresholds c_1 < ... < c_C; weight = number cleared (S > c_i)"
    )
    quality_mode: Literal["multiplicity", "weight"] = _f(
        "multiplicity", "SFT(Q): levels as sampling multiplicity or as a loss weight",
    )
    iw_preset: str = _f("llm", "iw-SFT preset", choices=tuple(IW_PRESETS))
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
        "auto", "advantage std scaling; auto = the method's own (group for grpo, none otherwise)",
        choices=("auto", *STD_SCALINGS),
    )
    kl_beta: float = _f(0.0, "weight beta of the KL(pi || pi_ref) penalty: the target is pi_ref exp(r/beta)/Z")
    kl_mode: Literal["sequence", "reward", "per_token"] = _f(
        "sequence",
        "how the KL enters. 'sequence': a loss term whose gradient is grad KL(pi||pi_ref) of whole completions "
        "(beta * sum_t logp_t * sg(log-ratio of tokens t..T)); 'reward': beta * sum_t (logp - logp_ref), "
        "detached, subtracted from each sequence's reward (exact with reinforce/rloo and adv_std none); "
        "'per_token': beta * k(logp, logp_ref) per token, a partial gradient of the sequence KL (it drops "
        "how a token changes the later ones; exact only for one-token completions)", needs="rl.kl_beta",
    )
    kl_estimator: str = _f(
        "k2",
        "kl_mode=per_token only: the per-token term. Per token (prefix fixed), k2's expected gradient is "
        "grad KL(pi||pi_ref), k3's is grad KL(pi_ref||pi) (GRPO's choice), k1's is 0",
        choices=KL_ESTIMATORS, needs="rl.kl_beta",
    )
    log_kl: bool = _f(
        False, "with kl_beta 0: load the reference anyway and log KL(pi || pi_ref) every batch (costs a frozen copy "
        "of the model and one reference forward per batch; with kl_beta > 0 the KL is always logged)",
    )
    reward: Literal["score", "success"] = _f(
        "score", "what RL maximises: the task's score ('score'), or 1 for a success and 0 otherwise ('success': "
        "a reward >= 0, the signal filtered SFT and iw-SFT curate with, so their lower bound applies)",
    )
    temperature: float = _f(1.0, "sampling temperature")
    top_p: float = _f(1.0, "nucleus sampling mass")
    revision_attempts: int = _f(
        1, "attempts per episode (sequential revision): after a failed attempt the task's verifier feedback is "
        "appended and the model tries again, up to this many times; the episode's reward is its last attempt's. "
        "1 = one attempt per sample (needs a task with a feedback hook when > 1)",
    )


@dataclass(frozen=True)
class TrainConfig:
    method: str = _f("sft", "training method (each described in algos/)", choices=METHODS)
    output_dir: str = _f("runs/train", "run folder: a new or empty folder (--resume: the run's own; --overwrite: "
                                       "an earlier run's)")
    seed: int = _f(0, "seed for data, sampling and initialisation")
    checkpoint_every: int = _f(0, "save a checkpoint every N steps (0: only the final model)")
    log_every: int = _f(1, "write a metrics line every N steps")
    report_to: Literal["none", "tensorboard", "trackio", "wandb", "mlflow"] = _f(
        "none", "also send every metrics line to an experiment tracker, through accelerate's trackers "
        "(tensorboard writes run_dir/tensorboard/; the others need their package and its own setup)",
    )
    log_completions: bool = _f(False, "RL: write every logged batch's completions (prompt, text, reward, reason) "
                                      "to run_dir/completions.jsonl")
    eval_every: int = _f(0, "every N steps, pass@1 and pass@k on held-out (test) prompts, logged as eval/...; 0: off")
    eval_prompts: int = _f(32, "held-out prompts of each evaluation (the same ones each time)")
    eval_samples: int = _f(8, "samples per prompt of each evaluation (k = 1 and k = eval_samples)")
    model: ModelConfig = _f(ModelConfig(), "policy and reference model")
    data: DataConfig = _f(DataConfig(), "task and data")
    optim: OptimConfig = _f(OptimConfig(), "optimizer and batch plan")
    offline: OfflineConfig = _f(OfflineConfig(), "offline-method settings")
    rl: RLConfig = _f(RLConfig(), "online RL settings")
    dist: DistConfig = _f(DistConfig(), "multi-process training (accelerate launch)")
    search: SearchBudget = _f(SearchBudget(), "search_sft: the verifier-guided search's budget per unsolved prompt")

    @property
    def method_record(self):
        return get_method(self.method)

    @property
    def is_rl(self) -> bool:
        return self.method_record.is_rl

    def uses_reference(self) -> bool:
        """Whether pi_ref is loaded and run: iw-SFT always; RL when its KL enters the loss or is logged
        (rl.kl_beta > 0 or rl.log_kl); at kl_beta 0 nothing would read the reference's log-probs."""
        if not self.method_record.needs_reference:
            return False
        return not self.is_rl or self.rl.kl_beta > 0 or self.rl.log_kl

    def resolved_source(self) -> str:
        """Where training sequences come from: 'online', 'solver', 'base_samples', 'search' or 'file'."""
        if self.is_rl:
            return "online"
        if self.data.source != "auto":
            return self.data.source
        if self.method_record.source == "search":  # samples of data.path's prompts, then search
            return "search"
        if self.data.path:
            if self.method_record.needs_scores and self.data.reward:  # sample the model, score with data.reward
                return "base_samples"
            return "file"  # the rows of data.path: their completions, and their score column where needed
        return self.method_record.source

    def resolved_adv_std(self) -> str:
        return self.rl.adv_std if self.rl.adv_std != "auto" else self.method_record.auto_std_scaling

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """The run's config.json: every setting, and under 'resolved' what the 'auto' ones and beta mean.
        With data.path the file is the task: data.task is recorded as null, not the unused default."""
        out = self.to_dict()
        if self.data.path:
            out["data"]["task"] = None
        return json.dumps({**out, "resolved": self.resolved()}, indent=2, sort_keys=False)

    def resolved(self) -> dict:
        out: dict = {"data_source": self.resolved_source()}
        if self.is_rl:
            out["adv_std"] = self.resolved_adv_std()
            out["kl"] = self._kl_semantics()
        return out

    def _kl_semantics(self) -> dict | None:
        """What rl.kl_beta does in this run: the target it makes optimal, and the beta in effect."""
        rl, std = self.rl, self.resolved_adv_std()
        if rl.kl_beta == 0:
            return None
        target = "pi_ref exp(r / beta) / Z over whole completions"
        if rl.kl_mode == "per_token":
            target = (f"none in closed form: per-token {rl.kl_estimator} is a partial gradient of the sequence KL "
                      "(exact for one-token completions only)")
        if std == "none" or rl.kl_mode == "reward":
            effective = "kl_beta"  # with the KL in the reward, a std scaling rescales reward and KL alike
        else:
            effective = f"kl_beta x the {'group' if std == 'group' else 'batch'}'s reward std (adv_std={std} " \
                        "divides the reward's advantage, not the KL term)"
        return {"mode": rl.kl_mode, "beta": rl.kl_beta, "target": target, "effective_beta": effective}


def _section_keys(section: str) -> tuple[str, ...]:
    cls = {"rl": RLConfig, "offline": OfflineConfig, "search": SearchBudget}[section]
    return tuple(f"{section}.{f.name}" for f in dataclasses.fields(cls))


def _key_methods() -> dict[str, tuple[str, ...]]:
    """Which methods read each method-specific key, from the records (algos/): a key the user set that
    the chosen method never reads is an error, not a silent no-op."""
    readers: dict[str, list[str]] = {k: [] for s in ("offline", "rl", "search") for k in _section_keys(s)}
    for name in METHODS:
        for key in get_method(name).settings:
            for k in (_section_keys(key) if key in ("rl", "offline", "search") else (key,)):
                readers.setdefault(k, []).append(name)
    for key in ("data.source", "data.demos_per_prompt", "data.base_samples_per_prompt", "optim.sequences_per_step"):
        readers[key] = list(OFFLINE_METHODS)
    return {k: tuple(v) for k, v in readers.items()}


def config_from_dict(raw: dict) -> TrainConfig:
    """Build and validate a TrainConfig from a (possibly partial) nested dict."""
    cfg = build(TrainConfig, raw)
    validate(cfg, set(flatten(raw)))
    return cfg


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    cfg, user_keys = load(TrainConfig, path, overrides or [])
    validate(cfg, user_keys)
    return cfg


def describe_fields() -> list[tuple[str, str, str]]:
    """(key, default, help) for every field: used by `reweightlab train --help-config`."""
    return describe(TrainConfig)


def validate(cfg: TrainConfig, user_keys: set[str]) -> None:
    readers = _key_methods()
    for key in sorted(user_keys):
        allowed = readers.get(key)
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
        "rl.revision_attempts": cfg.rl.revision_attempts, "log_every": cfg.log_every,
    }
    for key, v in positive.items():
        if v < 1:
            raise ConfigError(f"config key '{key}': must be >= 1, got {v}")
    for key, lo, hi, lo_open in _RANGES:
        _check_range(key, value_at(cfg, key), lo=lo, hi=hi, lo_open=lo_open)
    if cfg.model.ref_path and not cfg.method_record.needs_reference:
        raise ConfigError(f"config key 'model.ref_path' does nothing for method '{cfg.method}': it has no reference")
    if cfg.model.ref_path and not cfg.uses_reference():
        raise ConfigError("config key 'model.ref_path' does nothing with rl.kl_beta = 0: set rl.kl_beta > 0, or "
                          "rl.log_kl=true to log the KL to it")
    if cfg.eval_every < 0 or cfg.eval_prompts < 1 or cfg.eval_samples < 1:
        raise ConfigError("config keys 'eval_every' >= 0, 'eval_prompts' and 'eval_samples' >= 1, got "
                          f"{cfg.eval_every}, {cfg.eval_prompts}, {cfg.eval_samples}")
    if cfg.log_completions and not cfg.is_rl:
        raise ConfigError(f"config key 'log_completions' does nothing for method '{cfg.method}': it logs RL samples")
    if cfg.checkpoint_every < 0:
        raise ConfigError(f"config key 'checkpoint_every': must be >= 0, got {cfg.checkpoint_every}")
    if cfg.optim.warmup_steps < 0 or cfg.optim.warmup_steps >= cfg.optim.steps:
        raise ConfigError(
            f"config key 'optim.warmup_steps': must be in [0, optim.steps), got {cfg.optim.warmup_steps}"
        )
    unmet_needs(cfg, user_keys)
    _validate_method(cfg, user_keys)
    _validate_revision(cfg)
    _validate_model(cfg)
    if cfg.data.path:
        _validate_data_file(cfg, user_keys)


_RANGES = (  # key, lower bound, upper bound, lower bound excluded
    ("optim.lr", 0.0, None, True), ("optim.max_grad_norm", 0.0, None, False),
    ("optim.weight_decay", 0.0, None, False), ("rl.temperature", 0.0, None, True),
    ("rl.top_p", 0.0, 1.0, True), ("rl.kl_beta", 0.0, None, False), ("rl.clip_eps_low", 0.0, 1.0, False),
    ("rl.clip_eps_high", 0.0, None, False), ("offline.rwr_beta", 0.0, None, True),
    ("data.reward_timeout", 0.0, None, True),
)


def _validate_data_file(cfg: TrainConfig, user_keys: set[str]) -> None:
    """data.path, and how it combines with the method's data source."""
    d, source, method = cfg.data, cfg.resolved_source(), cfg.method_record
    if not d.path.lower().endswith((".jsonl", ".json", ".parquet")):
        raise ConfigError(f"config key 'data.path': expected a .jsonl or .parquet file, got {d.path!r}")
    if "data.task" in user_keys:
        raise ConfigError("config key 'data.task' does nothing when data.path is set (the file is the task)")
    if source == "solver":
        raise ConfigError("config key 'data.source': with data.path, offline methods train on the file's rows "
                          "(leave data.source auto) or on base_samples")
    if source in ("online", "base_samples", "search") and not d.reward:
        raise ConfigError(f"config key 'data.reward' is needed: {'RL' if cfg.is_rl else source} scores "
                          "samples of data.path's prompts with it (module:function or a built-in)")
    if source == "file":
        for key in ("data.success_threshold", "data.num_prompts"):
            if key in user_keys:
                raise ConfigError(f"config key '{key}' does nothing when training on data.path's rows")
        if not method.needs_scores and "data.reward" in user_keys:
            raise ConfigError(
                f"config key 'data.reward' does nothing for {cfg.method}: it trains on the file's completions"
            )
    if d.max_length < 0:
        raise ConfigError(f"config key 'data.max_length': must be >= 0, got {d.max_length}")
    if source in ("online", "base_samples", "search") and d.max_length and d.max_length <= d.max_new_tokens:
        raise ConfigError(f"config key 'data.max_length': {d.max_length} leaves no room for a prompt before "
                          f"data.max_new_tokens = {d.max_new_tokens} sampled tokens")


def _validate_method(cfg: TrainConfig, user_keys: set[str]) -> None:
    """The method's data source against data.source, then the record's own checks."""
    method = cfg.method_record
    problem = method.check(cfg, user_keys)
    if problem:
        raise ConfigError(problem)
    if method.source == "file" and not cfg.data.path:
        raise ConfigError(f"method '{cfg.method}' trains on a data file's rows: set data.path")
    if not method.is_rl and cfg.data.source not in ("auto", method.source):
        what = {"solver": "trains on demonstrations ('solver')", "base_samples": "needs scored samples "
                "('base_samples')", "file": "trains on data.path's rows (leave data.source auto)",
                "search": "samples the reference and searches (leave data.source auto)"}[method.source]
        raise ConfigError(f"config key 'data.source': method '{cfg.method}' {what}")
    if "data.demos_per_prompt" in user_keys and cfg.resolved_source() != "solver":
        raise ConfigError("config key 'data.demos_per_prompt' does nothing unless data.source is 'solver'")
    if "data.base_samples_per_prompt" in user_keys and cfg.resolved_source() not in ("base_samples", "search"):
        raise ConfigError("config key 'data.base_samples_per_prompt' does nothing unless data.source is 'base_samples'")
    if method.is_rl:
        single_pass = cfg.rl.epochs_per_batch == 1 and cfg.rl.minibatches_per_epoch == 1
        if single_pass and ({"rl.clip_eps_low", "rl.clip_eps_high"} & user_keys):
            raise ConfigError(
                "config key 'rl.clip_eps_*' does nothing with one epoch and one minibatch per batch "
                "(on-policy the ratio is 1); raise rl.epochs_per_batch or rl.minibatches_per_epoch"
            )
        if "rl.kl_estimator" in user_keys and cfg.rl.kl_mode != "per_token":
            raise ConfigError(f"config key 'rl.kl_estimator' does nothing with rl.kl_mode = {cfg.rl.kl_mode} "
                              "(it picks the per-token term of kl_mode = per_token)")
        n = cfg.rl.prompts_per_step * cfg.rl.samples_per_prompt
        if n % cfg.rl.minibatches_per_epoch:
            raise ConfigError(
                f"config key 'rl.minibatches_per_epoch': {cfg.rl.minibatches_per_epoch} does not divide "
                f"the {n} sequences of a batch"
            )


def _validate_revision(cfg: TrainConfig) -> None:
    """Revision needs the task's feedback hook: checked here, before a model is built or loaded."""
    if not cfg.is_rl or cfg.rl.revision_attempts == 1:
        return
    if cfg.data.path:
        has, name = False, cfg.data.path  # a data file's task scores with a reward function, no feedback
    else:
        try:
            has, name = has_feedback(get_task(cfg.data.task)), cfg.data.task
        except ValueError:  # an unknown task: setup names the registered ones
            return
    if not has:
        raise ConfigError(f"config key 'rl.revision_attempts': {cfg.rl.revision_attempts} attempts need a task whose "
                          f"verifier gives feedback (a feedback hook); task {name!r} has none")


def _validate_model(cfg: TrainConfig) -> None:
    m = cfg.model
    check_device("model.device", m.device)
    if m.lora_rank < 0:
        raise ConfigError(f"config key 'model.lora_rank': must be >= 0, got {m.lora_rank}")
    if m.lora_rank == 0:
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
