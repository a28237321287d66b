"""The training loop: one loop for every method, growing by sections (no callbacks).

  setup      -> run folder, models, task, data
  offline    -> draw a step of sequences, per-token weights from the method, weighted NLL
  online RL  -> sample, verify, advantages, reference log-probs once per batch, clipped surrogate + KL
  finish     -> final model saved atomically, summary returned
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from reweightlab.algos.rl import kl_shaped_rewards
from reweightlab.algos.rl import token_loss as rl_token_loss
from reweightlab.data.encoding import encode_prompts, solver_demonstrations
from reweightlab.data.lengths import check_lengths, context_length, problem_where
from reweightlab.data.store import SequenceStore, microbatches
from reweightlab.files import (
    FolderError,
    FolderLock,
    StorageError,
    check_new_folder,
    remove_stale_temporaries,
    remove_temporaries,
    write_text_atomic,
)
from reweightlab.math import ema_update_, token_entropy, weighted_nll
from reweightlab.models import load_model, load_tokenizer
from reweightlab.models.adapters import ReferenceView, frozen_reference, prepare_for_training, resolve_dtype
from reweightlab.models.forward import forward_logits_logp, store_logp, teacher_forced_logp
from reweightlab.models.loading import first_non_finite
from reweightlab.models.saving import save_model_atomic
from reweightlab.rollout import HFRolloutEngine
from reweightlab.rollout.revision import sample_revisions
from reweightlab.rollout.scored import sample_and_score
from reweightlab.tasks import Problem, Task, get_task
from reweightlab.tasks.hooks import reward_counts
from reweightlab.train import user_data
from reweightlab.train.config import TrainConfig
from reweightlab.train.distributed import AcceleratePeers, SingleProcess, make_distributed
from reweightlab.train.metrics import MetricsWriter, NullMetrics, check_tracker, make_tracker
from reweightlab.train.refcache import reference_logp
from reweightlab.train.resume import STATE_NAME, ResumeError, ResumePoint, cut_metrics, find_resume_point, write_state
from reweightlab.train.search_data import search_augmented
from reweightlab.train.step import NonFiniteError, accumulated_step, make_optimizer, make_scheduler


class RunFolderError(FolderError):
    """The output folder is not one this run may own (see files.check_new_folder)."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def model_folder(path: str, model_dir: str | None) -> str:
    """The folder to load: ``model_dir`` when the caller resolved one (the embedded default, built by
    recipes/pretrain.py), else ``model.path`` itself."""
    if model_dir is not None:
        return model_dir
    if path == "embedded":
        raise ValueError("model.path 'embedded' names the default model, which recipes.pretrain.ensure_embedded() "
                         "builds and caches: pass its folder as train(..., model_dir=...), or run `reweightlab train`")
    return path


@dataclass
class Setup:
    cfg: TrainConfig
    run_dir: Path
    device: torch.device
    tokenizer: PreTrainedTokenizerBase
    policy: PreTrainedModel
    ref: PreTrainedModel | ReferenceView | None
    task: Task
    problems: list[Problem]
    metrics: MetricsWriter | NullMetrics
    engine: HFRolloutEngine
    dist: SingleProcess | AcceleratePeers
    train_model: torch.nn.Module  # the policy as trained: DDP/FSDP-wrapped under accelerate launch
    step: int = 0  # the optimizer step (offline) or batch (RL) being taken, 0-based
    created: bool = False  # setup created the run folder
    lock: FolderLock | None = None  # held by the main process from the folder's creation to the run's end
    resume: ResumePoint | None = None  # --resume: the checkpoint and trainer state to continue from
    start_policy: PreTrainedModel | None = None  # the model the run started from (offline data are its samples)
    eval_problems: list[Problem] | None = None  # eval_every: the held-out prompts, the same each time
    ref_source: str = ""  # where pi_ref came from, for the log


def check_run_dir(path: str | Path) -> Path:
    """The output folder must be new or empty: a run never writes among files it did not make (another
    run's, a model folder's, the current folder's)."""
    try:
        return check_new_folder(path, "output_dir")
    except FolderError as exc:
        raise RunFolderError(str(exc)) from None


def overwrite_run_dir(path: str | Path) -> bool:
    """--overwrite: remove ``path`` if it holds a reweightlab training run and nothing else (its
    config.json, metrics, checkpoints, final model, reference cache, lock); a folder with anything
    else, or one another run holds, is refused. Returns whether something was removed."""
    import shutil

    from reweightlab.files import LOCK_NAME
    from reweightlab.train.refcache import CACHE_NAME

    run_dir = Path(path)
    if not str(path).strip():
        raise RunFolderError("output_dir is empty: name the folder the run should create")
    if not run_dir.exists():
        return False
    if not run_dir.is_dir():
        raise RunFolderError(f"--overwrite: output_dir {run_dir} is a file, not a run folder")
    ours = {*RUN_FILES, "checkpoints", "final", CACHE_NAME, LOCK_NAME, "completions.jsonl", "tensorboard"}
    names = {p.name for p in run_dir.iterdir() if not (p.name.startswith(".") and ".tmp-" in p.name)}
    foreign = sorted(names - ours)
    saved = run_dir / "config.json"
    is_run = saved.is_file() and '"method"' in saved.read_text(errors="replace")
    if foreign or (names - {LOCK_NAME} and not is_run):
        raise RunFolderError(f"--overwrite replaces only an earlier reweightlab run; {run_dir} holds "
                             f"{', '.join(foreign) if foreign else 'no run config.json'}, which it did not write")
    lock = FolderLock(run_dir, "output_dir")
    try:
        lock.refuse_if_locked()
    except FolderError as exc:
        raise RunFolderError(str(exc)) from None
    shutil.rmtree(run_dir)
    return True


def setup(cfg: TrainConfig, progress: bool, model_dir: str | None = None, resume: bool = False) -> Setup:
    torch.set_flush_denormal(True)  # denormals made CPU AdamW ~300x slower (DESIGN.md)
    torch.manual_seed(cfg.seed)
    run_dir = Path(cfg.output_dir) if resume else check_run_dir(cfg.output_dir)
    created = not run_dir.exists()  # a run removes only what it made itself
    # Everything that can fail on bad input (task name, model folder) runs before the run folder
    # is created, so a mistyped path leaves nothing behind.
    check_tracker(cfg.report_to)  # a missing package: one line before anything is loaded
    task = get_task(cfg.data.task) if not cfg.data.path else user_data.open_data_task(cfg)
    if cfg.offline.threshold is None and cfg.method_record.needs_scores:  # the task's own success score
        cfg = dataclasses.replace(cfg, offline=dataclasses.replace(cfg.offline, threshold=float(task.success_score)))
    point = None
    if resume:
        if cfg.model.lora_rank > 0:
            raise ResumeError("--resume does not support LoRA runs yet (their checkpoints hold merged weights)")
        point = find_resume_point(run_dir, cfg.to_json())
    dist = make_distributed(cfg.model.device, cfg.dist.strategy, resolve_device(cfg.model.device))
    device = dist.device  # under accelerate launch: this process's own device
    if dist.world_size > 1 and cfg.dist.strategy == "fsdp" and cfg.resolved_source() != "solver":
        # sampling runs the unwrapped module, whose weights FSDP has sharded away
        raise ValueError("dist.strategy=fsdp supports methods trained on solver demonstrations (sft, dft) "
                         "only; use ddp for sampling-based methods")
    path = model_folder(cfg.model.path, model_dir)
    tok = load_tokenizer(path)
    if cfg.data.path:  # the file's conversations render with this tokenizer's chat template
        user_data.bind_tokenizer(task, tok, cfg)
    if point is not None and dist.world_size > 1 and cfg.dist.strategy == "fsdp":
        raise ResumeError("--resume does not support dist.strategy=fsdp (its optimizer state is sharded)")
    dtype = resolve_dtype(cfg.model.dtype, device)
    policy = load_model(point.checkpoint if point else path, dtype=dtype, device=device)
    policy = prepare_for_training(policy, cfg.model)  # gradient checkpointing, LoRA
    policy.train()
    ref, ref_source = None, ""
    if cfg.uses_reference():  # pi_ref is frozen, never refreshed; not loaded when nothing reads it
        # model.ref_path, else the starting model: a resumed run's policy is its checkpoint, its pi_ref
        # still the model the run started from
        ref_path = cfg.model.ref_path or (path if point is not None else "")
        if ref_path:
            ref = load_model(ref_path, dtype=dtype, device=device).eval().requires_grad_(False)
            if ref.get_output_embeddings().weight.shape != policy.get_output_embeddings().weight.shape:
                raise ValueError(f"config key 'model.ref_path': {ref_path} has another vocabulary than {path}")
            ref_source = ref_path if cfg.model.ref_path else f"{path} (the starting model)"
        else:
            ref = frozen_reference(policy)  # under LoRA: the policy with adapters disabled, no copy
            ref_source = f"{path} (the starting model; model.ref_path sets another)"
    start_policy = policy  # resumed, offline samples still come from the model the run started from
    if point is not None and cfg.resolved_source() in ("base_samples", "search"):
        start_policy = ref if ref is not None and not cfg.model.ref_path else \
            load_model(path, dtype=dtype, device=device).eval().requires_grad_(False)
    problems = task.problems(cfg.data.variant, "train", cfg.data.num_prompts, cfg.seed)
    eval_problems = None
    if cfg.eval_every:
        from reweightlab.config import ConfigError

        try:
            eval_problems = task.problems(cfg.data.variant, "test", cfg.eval_prompts, cfg.seed)
        except ValueError as exc:
            raise ConfigError(f"config key 'eval_prompts': {exc}") from None
    if cfg.resolved_source() not in ("file", "solver"):  # sampled: prompt + every attempt must fit
        check_prompts_fit(task, problems, tok, context_length(policy.config),
                          cfg.data.max_new_tokens * (cfg.rl.revision_attempts if cfg.is_rl else 1))
    lock = None
    if dist.is_main:  # one process writes the run folder; the others only train
        try:  # checks the folder again, under the lock (a resumed run's folder is its own)
            lock = FolderLock(run_dir, "output_dir").acquire(existing=point is not None)
        except FolderError as exc:
            raise RunFolderError(str(exc)) from None
        try:
            if point is None:
                write_text_atomic(run_dir / "config.json", cfg.to_json())
            else:  # the steps after the checkpoint are taken again; a killed start's debris goes
                cut_metrics(run_dir / "metrics.jsonl", point.step)
                cut_metrics(run_dir / "completions.jsonl", point.step)
                remove_stale_temporaries(run_dir)
            metrics = MetricsWriter(run_dir / "metrics.jsonl",
                                    tracker=make_tracker(cfg.report_to, run_dir, json.loads(cfg.to_json())))
        except BaseException:
            lock.release()
            _remove_if_empty(run_dir, created)
            raise
    else:
        metrics = NullMetrics()
    dist.barrier()
    engine = HFRolloutEngine(policy, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return Setup(cfg, run_dir, device, tok, policy, ref, task, problems, metrics, engine,
                 dist=dist, train_model=dist.wrap(policy), created=created, lock=lock, resume=point,
                 ref_source=ref_source, start_policy=start_policy, eval_problems=eval_problems)


def check_prompts_fit(task, problems, tokenizer, context: int | None, new_tokens: int) -> None:
    """Every prompt plus the ``new_tokens`` sampled after it within the model's context (a TooLongError
    naming the first that is not: data.max_length cuts or drops long prompts of a data file)."""
    if context is None:
        return
    lengths = [len(ids) + new_tokens for ids in encode_prompts(tokenizer, [p.prompt for p in problems])]
    check_lengths(lengths, context, lambda i: problem_where(task, problems[i]),
                  f"the prompt + {new_tokens} sampled tokens",
                  "set data.max_length to cut or drop long prompts, or lower data.max_new_tokens")


def _remove_if_empty(folder: Path, created: bool) -> None:
    if created and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def train(cfg: TrainConfig, *, progress: bool = True, base_samples=None, log=print,
          model_dir: str | None = None, base_problems=None, resume: bool = False) -> Path:
    """Run one method end to end; returns the run folder (final model in run_dir/final).

    ``model_dir``: the folder of the starting model when ``model.path`` is 'embedded' (the caller
    builds it: recipes.pretrain.resolve_model_path); config.json keeps the name the user gave.
    ``base_samples``: scored samples of the reference to train on instead of drawing them (the demo
    shares one set between methods); ``base_problems``: the problems they were drawn for, prompt by
    prompt (search_sft searches the ones no sample solved).
    """
    t_start = time.perf_counter()
    s = setup(cfg, progress, model_dir, resume=resume)
    if not s.dist.is_main:  # one process speaks for all
        log, progress = (lambda *_: None), False
    if s.ref_source:
        log(f"[{cfg.method}] reference pi_ref (KL / importance weights): {s.ref_source}")
    if s.resume is not None:
        log(f"[resume] continuing {s.run_dir} from {s.resume.checkpoint.name} (step {s.resume.step} of "
            f"{cfg.optim.steps}): weights, optimizer, schedule and random state")
    if s.dist.world_size > 1:
        log(f"data parallel: {s.dist.world_size} processes ({cfg.dist.strategy}); each trains its share of "
            "every step's sequences (offline) or prompts (RL)")
    try:
        try:
            if cfg.is_rl:
                _run_rl(s, progress, log)
            else:
                _run_offline(s, progress, log, base_samples, base_problems)
        except NonFiniteError as exc:  # the weights are still those of the last finite step; none is saved as final
            ckpts = _checkpoints(s.run_dir)
            raise NonFiniteError(f"step {s.step + 1}: {exc}; training stopped, no final/ written (last checkpoint: "
                                 f"{ckpts[-1] if ckpts else 'none'}); lower optim.lr or check the data and rewards"
                                 ) from None
        _save(s, s.run_dir / "final", extra={"method": cfg.method, "steps": cfg.optim.steps})
        if s.dist.is_main:
            log(run_summary(s.run_dir, cfg, time.perf_counter() - t_start))
    except StorageError as exc:  # disk full or read-only: say where the last good weights are
        _finish(s, discard=True, log=log)
        ckpts = _checkpoints(s.run_dir)
        raise StorageError(f"{exc}; training stopped at step {s.step + 1} (last complete checkpoint: "
                           f"{ckpts[-1] if ckpts else 'none'}); free space or choose another output_dir") from None
    except KeyboardInterrupt:
        _finish(s, discard=True, log=log, interrupted=True)
        raise
    except BaseException:
        _finish(s, discard=True, log=log)
        raise
    _finish(s, discard=False, log=log)
    return s.run_dir


def _finish(s: Setup, *, discard: bool, log, interrupted: bool = False) -> None:
    """The end of every run, however it ends: metrics closed, temporaries of interrupted atomic
    writes removed, an untrained run's files removed (``discard``), the lock released, and the
    folder removed if the run created it and left nothing in it."""
    s.metrics.close()
    if not s.dist.is_main:
        return
    remove_temporaries(s.run_dir)
    discarded = discard and _discard_untrained(s)
    if interrupted and not discarded:
        ckpts = _checkpoints(s.run_dir)
        log(f"interrupted; nothing half-written. Last complete checkpoint: {ckpts[-1] if ckpts else 'none'}")
    if s.lock is not None:
        s.lock.release()
    if discarded:
        _remove_if_empty(s.run_dir, s.created)


RUN_FILES = ("config.json", "metrics.jsonl")


def run_summary(run_dir: Path, cfg: TrainConfig, seconds: float) -> str:
    """The end-of-run line: steps, time, the first and last logged loss (and reward, success, KL for
    RL), the median training throughput, where the model is."""
    import statistics

    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    if not rows:
        return f"[{cfg.method}] done in {seconds:.0f} s; final model: {run_dir / 'final'}"
    first, last = rows[0], rows[-1]
    parts = [f"loss {first['loss']:.4g} -> {last['loss']:.4g}"]
    for key in ("reward", "success", "kl"):
        if key in last:
            parts.append(f"{key} {first[key]:.4g} -> {last[key]:.4g}")
    speed = [r["tokens_per_s"] for r in rows if "tokens_per_s" in r]
    if speed:
        parts.append(f"median {statistics.median(speed):,.0f} training tokens/s")
    return (f"[{cfg.method}] done: {last['step']} steps in {seconds:.0f} s; {'; '.join(parts)}; "
            f"final model: {run_dir / 'final'}")


def _checkpoints(run_dir: Path) -> list[Path]:
    folder = run_dir / "checkpoints"
    return sorted(p for p in folder.glob("step-*") if p.is_dir()) if folder.is_dir() else []


def _discard_untrained(s: Setup) -> bool:
    """A run that stops before its first step is logged leaves nothing: its config.json, its empty
    metrics.jsonl and its reference-log-prob cache are removed (and, by ``_finish``, the folder if
    setup created it), so the folder can be used again. Returns whether it did so."""
    if not s.dist.is_main:
        return False
    metrics = s.run_dir / "metrics.jsonl"
    if (metrics.is_file() and metrics.stat().st_size > 0) or (s.run_dir / "checkpoints").exists() \
            or (s.run_dir / "final").exists():
        return False
    import shutil

    from reweightlab.train.metrics import TRACKER_FOLDER
    from reweightlab.train.refcache import CACHE_NAME

    for name in (*RUN_FILES, CACHE_NAME, "completions.jsonl"):
        (s.run_dir / name).unlink(missing_ok=True)
    shutil.rmtree(s.run_dir / TRACKER_FOLDER, ignore_errors=True)
    return True


def _maybe_checkpoint(s: Setup, step: int, state=None) -> None:
    """Every checkpoint_every steps: the model and (``state()``: what the loop needs to go on) the
    trainer state that --resume reads (train/resume.py)."""
    every = s.cfg.checkpoint_every
    if every and (step + 1) % every == 0:
        files = None
        sharded = s.dist.world_size > 1 and s.cfg.dist.strategy == "fsdp"  # its optimizer state is per process
        if state is not None and s.dist.is_main and not sharded:
            parts = {"step": step + 1, "torch_rng": torch.get_rng_state(), **state()}
            files = {STATE_NAME: lambda path: write_state(path, **parts)}
        _save(s, s.run_dir / "checkpoints" / f"step-{step + 1:06d}", extra_files=files)


def _save(s: Setup, dest: Path, extra: dict | None = None, extra_files: dict | None = None) -> None:
    """Rank 0 writes; every process joins the gather of full weights (needed under FSDP). A model
    with a non-finite weight is never written (NonFiniteError): the step checks make that a
    last line of defence."""
    bad = first_non_finite(s.policy)
    if bad is not None:
        raise NonFiniteError(f"weight {bad[0]} holds {bad[1]} non-finite value(s); {dest.name} not written")
    state_dict = s.dist.full_state_dict(s.train_model)
    if s.dist.is_main:
        save_model_atomic(s.policy, s.tokenizer, dest, extra=extra, merge_lora=s.cfg.model.merge_lora,
                          state_dict=state_dict, extra_files=extra_files)
    s.dist.barrier()


# ---------------------------------------------------------------------------------------------
# offline methods
# ---------------------------------------------------------------------------------------------
class OfflineContext:
    """What an offline method may ask the loop for: its settings, and log-probs of q (EMA copy)."""

    def __init__(self, s: Setup, ema):
        self.offline, self._s, self.ema = s.cfg.offline, s, ema
        self._per_mb = s.cfg.optim.sequences_per_microbatch

    def mask_of(self, store: SequenceStore) -> torch.Tensor:
        return store.target_mask()

    def logp_q_of(self, store: SequenceStore) -> torch.Tensor:
        mbs = microbatches(store, self._per_mb)
        return teacher_forced_logp(self.ema, mbs, len(store), store.ids_NL.shape[1], self._s.device)


def offline_data(s: Setup, progress: bool, base_samples, base_problems=None, log=print) -> SequenceStore:
    cfg = s.cfg
    if cfg.resolved_source() == "file":
        # the counts are logged there
        store, _counts = user_data.file_store(s.task, s.tokenizer, cfg, context=context_length(s.policy.config))
        return store
    if cfg.resolved_source() == "solver":
        return solver_demonstrations(s.task, s.problems, s.tokenizer, cfg.data.demos_per_prompt, cfg.seed)
    if base_samples is not None:
        sampled, problems = base_samples, base_problems
    else:
        sampled, problems = _sample_reference(s, progress), s.problems
    if cfg.resolved_source() == "search":
        if problems is None:
            raise ValueError("search_sft with base_samples needs base_problems: the problems they were drawn for")
        return search_augmented(s, sampled, problems, log)
    return sampled


def _sample_reference(s: Setup, progress: bool) -> SequenceStore:
    """Scored samples of the reference on the training prompts (data.base_samples_per_prompt each).

    Each process samples its shard of the prompts, each prompt seeded by its index (so N processes
    draw what one would), and the shards are gathered: every process then holds the whole dataset.
    """
    cfg = s.cfg
    if len(s.problems) < s.dist.world_size:
        raise ValueError(f"data.num_prompts ({len(s.problems)}) cannot be shared by {s.dist.world_size} processes")
    first, stop = s.dist.shard(len(s.problems))
    engine = s.engine if s.start_policy is s.policy else HFRolloutEngine(
        s.start_policy, eos_token_id=s.tokenizer.eos_token_id, pad_token_id=s.tokenizer.pad_token_id)
    local = sample_and_score(
        engine, s.task, s.problems[first:stop], s.tokenizer, samples_per_prompt=cfg.data.base_samples_per_prompt,
        max_new_tokens=cfg.data.max_new_tokens, progress=progress,
        prompt_seeds=[_prompt_seed(cfg.seed, -1, i) for i in range(first, stop)],
    ).store
    return gather_store(local, s.dist, s.tokenizer.pad_token_id)


def gather_store(store: SequenceStore, dist, pad_id: int) -> SequenceStore:
    """Every process's sequences, in rank order: widths padded to the widest, rows gathered."""
    if dist.world_size == 1:
        return store
    from reweightlab.train.distributed import gather_rows

    L = int(dist.all_gather_cat(torch.tensor([store.ids_NL.shape[1]])).max())
    store = SequenceStore.concat([store], pad_id, width=L)  # every process's store as wide as the widest
    # collectives must come in the same order on every process: the fields in their declared order
    fields = {k: gather_rows(dist, v) for k, v in store.present().items()}
    return SequenceStore(gather_rows(dist, store.ids_NL), gather_rows(dist, store.prompt_len_N),
                         gather_rows(dist, store.total_len_N), **fields)


def _run_offline(s: Setup, progress: bool, log, base_samples, base_problems) -> None:
    cfg, method = s.cfg, s.cfg.method_record
    data = offline_data(s, progress, base_samples, base_problems, log)
    store, draw = method.prepare(data, cfg.offline)
    if "offline.threshold" in method.settings:
        log(f"[{cfg.method}] kept {len(store)} of {len(data)} sequences (reward >= offline.threshold = "
            f"{cfg.offline.threshold:g})")
    if method.needs_reference:  # once per dataset (pi_ref is frozen), cached in the run folder
        store = store.replace(logp_ref_NT=reference_logp(
            s.run_dir, store, s.ref, sequences_per_microbatch=cfg.optim.sequences_per_microbatch,
            device=s.device, write=s.dist.is_main, log=log, dist=s.dist,
        ))
    ema_decay = method.ema_decay(cfg.offline)  # q: an EMA copy of the policy, or None
    ema = None if ema_decay is None else copy.deepcopy(s.policy).eval().requires_grad_(False)
    ctx = OfflineContext(s, ema)
    per_step = store.completion_tokens() / len(store) * cfg.optim.sequences_per_step
    log(
        f"[{cfg.method}] {len(store)} training sequences ({store.completion_tokens()} completion tokens); "
        f"{cfg.optim.steps} steps x {cfg.optim.sequences_per_step} sequences (~{per_step:.0f} completion "
        f"tokens per step), micro-batches of {cfg.optim.sequences_per_microbatch}"
    )
    opt, sched = _optimizer(s, total_steps=cfg.optim.steps)
    gen = torch.Generator().manual_seed(cfg.seed)  # same draw on every process; each trains its slice
    pool = draw if draw is not None else torch.arange(len(store))
    start = 0
    if s.resume is not None:
        st = s.resume.state
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        gen.set_state(st["gen"])
        torch.set_rng_state(st["torch_rng"])
        if ema is not None:
            ema.load_state_dict(st["ema"])
        start = s.resume.step

    def state():
        return {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "gen": gen.get_state(),
                **({"ema": ema.state_dict()} if ema is not None else {})}

    for step in tqdm(range(start, cfg.optim.steps), desc=cfg.method, disable=not progress, initial=start,
                     total=cfg.optim.steps):
        s.step = step
        t0 = time.perf_counter()
        pick = pool[torch.randint(len(pool), (cfg.optim.sequences_per_step,), generator=gen)]
        batch = store.select(pick)
        batch = batch.replace(step_weight_N=method.step_weights(batch, ctx))  # weights over the whole step
        local = shard_store(batch, s.dist)

        def token_loss(mb, method=method):
            _logits, logp = forward_logits_logp(s.train_model, mb)
            w_BT = method.token_weights(logp, mb, ctx)  # B x T, zero off the completion
            return weighted_nll(logp, w_BT), {"weight": w_BT}

        mbs = microbatches(local, cfg.optim.sequences_per_microbatch, bucketed=True)
        stats = accumulated_step(
            s.train_model, opt, sched, mbs, token_loss,
            reduction=cfg.optim.reduction, max_grad_norm=cfg.optim.max_grad_norm, device=s.device,
            constant_per_sequence=cfg.data.max_new_tokens, dist=s.dist,
        )
        if ema is not None:
            ema_update_(ema.parameters(), s.policy.parameters(), ema_decay)
        dt = time.perf_counter() - t0
        _log_step(s, step, stats, {"tokens_per_s": batch.completion_tokens() / dt,
                                   "total_tokens_per_s": int(batch.total_len_N.sum()) / dt,
                                   "time_training": dt, "learning_rate": sched.get_last_lr()[0]})
        _maybe_checkpoint(s, step, state)


def _optimizer(s: Setup, total_steps: int):
    """AdamW over the trained parameters and its schedule over ``total_steps`` optimizer steps."""
    o = s.cfg.optim
    opt = make_optimizer(s.train_model, lr=o.lr, weight_decay=o.weight_decay, betas=o.betas)
    return opt, make_scheduler(opt, schedule=o.schedule, warmup_steps=o.warmup_steps, total_steps=total_steps)


def shard_store(store: SequenceStore, dist) -> SequenceStore:
    """This process's contiguous slice of a step's sequences (all of them in one process)."""
    if dist.world_size == 1:
        return store
    if len(store) < dist.world_size:
        raise ValueError(f"{len(store)} sequences per step cannot be shared by {dist.world_size} processes")
    start, stop = dist.shard(len(store))
    return store.select(torch.arange(start, stop))


def _evaluate(s: Setup, step: int) -> dict:
    """eval_every: pass@1 and pass@k (k = eval_samples) of the current policy on the held-out prompts,
    each prompt sampled with the same seed at every evaluation (so two evaluations differ by the model
    only), and the mean reward: logged as eval/pass@1, eval/pass@k, eval/reward."""
    cfg = s.cfg
    if not cfg.eval_every or (step + 1) % cfg.eval_every or s.eval_problems is None:
        return {}
    k = cfg.eval_samples
    was_training = s.policy.training
    s.policy.eval()
    try:
        scored = sample_and_score(s.engine, s.task, s.eval_problems, s.tokenizer, samples_per_prompt=k,
                                  max_new_tokens=cfg.data.max_new_tokens,
                                  prompt_seeds=[_prompt_seed(cfg.seed, -2, i) for i in range(len(s.eval_problems))])
    finally:
        s.policy.train(was_training)
    success = scored.success_PG
    return {"eval/pass@1": float(success.mean()), f"eval/pass@{k}": float((success.sum(1) > 0).float().mean()),
            "eval/reward": float(scored.rewards_PG.mean())}


def _log_step(s: Setup, step: int, stats: dict, extra: dict) -> None:
    extra = {**extra, **_evaluate(s, step)}
    if (step + 1) % s.cfg.log_every and step + 1 != s.cfg.optim.steps and not any(k.startswith("eval/") for k in extra):
        return
    names = list(stats)
    values = torch.stack([stats[k].float().reshape(()).cpu() for k in names]).tolist()  # one sync per step
    record = {"step": step + 1, **dict(zip(names, values, strict=True)), **extra}
    s.metrics.write(record)


# ---------------------------------------------------------------------------------------------
# online RL
# ---------------------------------------------------------------------------------------------
def _run_rl(s: Setup, progress: bool, log) -> None:
    cfg, rl_cfg = s.cfg, s.cfg.rl
    P, G = rl_cfg.prompts_per_step, rl_cfg.samples_per_prompt
    updates = cfg.optim.steps * rl_cfg.epochs_per_batch * rl_cfg.minibatches_per_epoch
    log(
        f"[{cfg.method}] {cfg.optim.steps} batches x {P} prompts x {G} samples = {P * G} sequences per batch; "
        f"up to {P * G * cfg.data.max_new_tokens} completion tokens per batch; "
        f"{rl_cfg.epochs_per_batch} epoch(s) x {rl_cfg.minibatches_per_epoch} minibatch(es) -> {updates} updates"
    )
    if rl_cfg.revision_attempts > 1:
        log(f"[{cfg.method}] sequential revision: each sample is an episode of up to {rl_cfg.revision_attempts} "
            "attempts, the task's feedback after each failed one; reward = the last attempt's, loss on the attempts")
    opt, sched = _optimizer(s, total_steps=updates)
    rng = random.Random(cfg.seed)
    flat = 0  # batches whose every advantage was 0
    start = 0
    if s.resume is not None:
        st = s.resume.state
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        version, internal, gauss = st["rng"]
        rng.setstate((version, tuple(internal), gauss))
        torch.set_rng_state(st["torch_rng"])
        flat, start = int(st["flat"]), s.resume.step

    def state():
        return {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": rng.getstate(), "flat": flat}

    for step in tqdm(range(start, cfg.optim.steps), desc=cfg.method, disable=not progress, initial=start,
                     total=cfg.optim.steps):
        s.step = step
        batch_problems = [s.problems[i] for i in rng.sample(range(len(s.problems)), min(P, len(s.problems)))]
        t0 = time.perf_counter()
        batch, rewards_PG, episodes = _rl_batch(s, batch_problems, step)  # batch: this process's; rewards: all
        t_gen = time.perf_counter() - t0
        stats = _rl_updates(s, batch, opt, sched)
        t_train = time.perf_counter() - t0 - t_gen
        zero_std = (rewards_PG.std(dim=1) == 0).float().mean() if G > 1 else torch.tensor(1.0)
        lengths = s.dist.all_gather_cat((batch.total_len_N - batch.prompt_len_N).float())
        clipped = s.dist.all_gather_cat(clipped_N(batch, s.tokenizer.eos_token_id))
        extra = {  # TRL's names where TRL logs the same figure
            "reward": float(rewards_PG.mean()), "reward_std": float(rewards_PG.std()),
            "frac_reward_zero_std": float(zero_std),
            "success": float(s.dist.all_gather_cat(batch.success_N).mean()),
            "completions/mean_length": float(lengths.mean()), "completions/clipped_ratio": float(clipped.mean()),
            "learning_rate": sched.get_last_lr()[0],
            "tokens_per_s": float(lengths.sum()) * rl_cfg.epochs_per_batch / max(t_train, 1e-9),
            "sample_tokens_per_s": float(lengths.sum()) / max(t_gen, 1e-9),
            "time_generation": t_gen, "time_training": t_train,
            **reward_counts(s.task),  # reward_errors, reward_timeouts (user reward functions)
            **episodes,  # revision: success at attempt 1 and attempts per episode
        }
        flat += int(episodes["adv_all_zero"])
        _log_step(s, step, stats, extra)
        _maybe_checkpoint(s, step, state)
    if flat:
        log(flat_batches_warning(cfg, flat))


def flat_batches_warning(cfg: TrainConfig, flat: int) -> str:
    """The end-of-run warning for batches that taught nothing: every advantage 0 (each group's samples
    all scored alike, so a group baseline cancels them; or every reward 0 without one)."""
    steps = cfg.optim.steps
    what = "every batch" if flat == steps else f"{flat} of {steps} batches"
    moved = ("the policy did not move: the advantages, and with them the gradient, were 0 throughout"
             if flat == steps else "those batches contributed no gradient")
    return (f"warning: in {what} all {cfg.rl.samples_per_prompt} samples of each prompt scored the same reward "
            f"(metric frac_reward_zero_std); {moved}. More samples per prompt, a graded reward, a higher "
            "temperature, or prompts the model solves sometimes, give it something to learn from")


def clipped_N(store: SequenceStore, eos_id: int) -> torch.Tensor:
    """1.0 for each sequence cut at the token budget (its last token is not EOS), else 0.0: TRL's
    completions/clipped_ratio, the truncation rate. One gather, no loop over sequences."""
    last = store.ids_NL.gather(1, (store.total_len_N - 1).clamp(min=0).long()[:, None]).squeeze(1)
    return (last != eos_id).float()


def _prompt_seed(seed: int, step: int, index: int) -> int:
    """Sampling seed of the index-th prompt of a batch: the same in any number of processes."""
    return ((seed * 1_000_003 + step) * 1_000_033 + index) % (1 << 62)


def _rl_batch(s: Setup, problems, step: int):
    """Sample, verify, compute advantages; old and reference log-probs once for the whole batch.

    With ``rl.revision_attempts`` R > 1 a sample is a revision episode (rollout/revision.py): its
    sequence holds every attempt and the feedback between them, its reward is its last attempt's,
    and the advantage is the method's, computed from the episode rewards; loss covers the attempts.

    Data parallel: each process samples its slice of the prompts, each prompt seeded by its index
    in the whole batch (so N processes draw what one would), and advantages are computed from the
    rewards of all processes (exact for batch-level baselines too). Returns this process's sequences
    and the rewards of the whole batch (P x G).
    """
    cfg, rl_cfg = s.cfg, s.cfg.rl
    if len(problems) % s.dist.world_size:
        raise ValueError(f"rl.prompts_per_step ({len(problems)}) must be a multiple of the "
                         f"{s.dist.world_size} processes")
    first, stop = s.dist.shard(len(problems))
    sampling = dict(samples_per_prompt=rl_cfg.samples_per_prompt, max_new_tokens=cfg.data.max_new_tokens,
                    temperature=rl_cfg.temperature, top_p=rl_cfg.top_p,
                    prompt_seeds=[_prompt_seed(cfg.seed, step, i) for i in range(first, stop)])
    episodes = {}
    if rl_cfg.revision_attempts > 1:  # one sequence per episode: attempts and feedback, loss on the attempts
        samples = sample_revisions(s.engine, s.task, problems[first:stop], s.tokenizer,
                                   attempts=rl_cfg.revision_attempts, **sampling)
        episodes = {"success_first_attempt": float(s.dist.all_gather_cat(samples.first_success_PG.reshape(-1)).mean()),
                    "attempts": float(s.dist.all_gather_cat(samples.attempts_PG.reshape(-1)).mean())}
    else:
        samples = sample_and_score(s.engine, s.task, problems[first:stop], s.tokenizer, **sampling)
    batch = samples.store
    if rl_cfg.temperature == 1.0 and rl_cfg.top_p == 1.0:
        # the sampler's log-probs are the policy's (a test checks them against a teacher-forced pass)
        logp_old = batch.logp_sampler_NT
    else:
        logp_old = store_logp(s.policy, batch, s.device, sequences_per_microbatch=cfg.optim.sequences_per_microbatch,
                              bucketed=True)
    # a prompt's G samples share its prefill (an episode store, with feedback inside, runs plainly)
    logp_ref = None if s.ref is None else store_logp(s.ref, batch, s.device, bucketed=True,
                                                      sequences_per_microbatch=cfg.optim.sequences_per_microbatch)
    batch = batch.replace(logp_old_NT=logp_old, logp_ref_NT=logp_ref)
    signal_PG = samples.success_PG.float() if rl_cfg.reward == "success" else samples.rewards_PG
    rewards_PG = signal_PG
    if rl_cfg.kl_beta > 0 and rl_cfg.kl_mode == "reward":
        mask = batch.target_mask()
        rewards_PG = kl_shaped_rewards(rewards_PG, batch.logp_old_NT, batch.logp_ref_NT, mask, rl_cfg.kl_beta)
    rewards_PG = s.dist.all_gather_cat(rewards_PG)
    adv_N = cfg.method_record.advantages(rewards_PG, cfg.resolved_adv_std()).reshape(-1)
    G = rl_cfg.samples_per_prompt
    batch = batch.replace(adv_N=adv_N[first * G : stop * G])
    episodes["adv_all_zero"] = float(not bool(adv_N.any()))  # nothing to learn from this batch
    if cfg.log_completions and s.dist.is_main and _logged(s, step):
        _write_completions(s, step, problems[first:stop], samples)
    return batch, s.dist.all_gather_cat(signal_PG), episodes


def _logged(s: Setup, step: int) -> bool:
    return (step + 1) % s.cfg.log_every == 0 or step + 1 == s.cfg.optim.steps


def _write_completions(s: Setup, step: int, problems, samples) -> None:
    """log_completions: this batch's samples as JSON lines of run_dir/completions.jsonl (step, prompt,
    completion, reward, success, reason); a revision episode's completion is its attempts in order."""
    G = s.cfg.rl.samples_per_prompt
    rewards, success = samples.rewards_PG.reshape(-1).tolist(), samples.success_PG.reshape(-1).tolist()
    lines = []
    for n, (reward, ok) in enumerate(zip(rewards, success, strict=True)):
        if isinstance(samples.texts[n], list):  # revision: the attempts and each verdict
            text, reason = samples.texts[n], [v.reason for v in samples.verdicts[n]]
        else:
            text, reason = samples.texts[n], samples.reasons[n] if samples.reasons else None
        lines.append(json.dumps({"step": step + 1, "prompt": problems[n // G].prompt, "completion": text,
                                 "reward": reward, "success": bool(ok), "reason": reason}))
    with open(s.run_dir / "completions.jsonl", "a", encoding="utf-8") as fh:
        fh.write("".join(x + "\n" for x in lines))


def _rl_updates(s: Setup, batch: SequenceStore, opt, sched) -> dict:
    cfg, rl_cfg = s.cfg, s.cfg.rl
    N = len(batch)
    per_update = N // rl_cfg.minibatches_per_epoch
    gen = torch.Generator().manual_seed(cfg.seed + 17)
    collected: dict[str, list] = {}

    def token_loss(mb):
        logits, logp = forward_logits_logp(s.train_model, mb)
        loss_BT, clipped_BT, kl_BT = rl_token_loss(logp, mb, rl_cfg)
        with torch.no_grad():
            stats = {"clip_ratio": clipped_BT.float(), "entropy": token_entropy(logits)}
            if kl_BT is not None:
                stats["kl"] = kl_BT
        return loss_BT, stats

    for _ in range(rl_cfg.epochs_per_batch):
        order = torch.randperm(N, generator=gen) if rl_cfg.minibatches_per_epoch > 1 else torch.arange(N)
        for m in range(rl_cfg.minibatches_per_epoch):
            part = batch.select(order[m * per_update : (m + 1) * per_update])
            mbs = microbatches(part, cfg.optim.sequences_per_microbatch, bucketed=True)
            stats = accumulated_step(
                s.train_model, opt, sched, mbs, token_loss,
                reduction=cfg.optim.reduction, max_grad_norm=cfg.optim.max_grad_norm, device=s.device,
                # sum_over_constant: the longest a sample can be, every attempt of an episode included
                constant_per_sequence=cfg.data.max_new_tokens * rl_cfg.revision_attempts, dist=s.dist,
            )
            for k, v in stats.items():
                collected.setdefault(k, []).append(v)
    return {k: torch.stack([t.float().reshape(()) for t in v]).mean() for k, v in collected.items()}
