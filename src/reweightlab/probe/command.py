"""`reweightlab probe`: its settings (flags, --config FILE, key=value), load the models, run the probe
(study.py) for every one, write probe.json + probe_prompts.jsonl (outputs.py), print a table."""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from reweightlab.algos import REGISTRY
from reweightlab.config import ConfigError, add_flags, describe, flag_values, load, setting
from reweightlab.files import FolderError, FolderLock, check_new_folder, remove_temporaries
from reweightlab.probe.outputs import (
    ProbeSummary,
    SampleWriter,
    SplitFigures,
    as_json,
    model_summary,
    prompt_rows,
    write_outputs,
)
from reweightlab.probe.study import PROBE_VERSION, PROMPT_SPLITS, ProbeError, ProbeSettings, probe_model
from reweightlab.tasks.hooks import has_feedback, use_tokenizer


def model_label(path: str | Path, taken: set[str]) -> str:
    """A short name for a model folder: its name, or its run folder's name for `<run>/final`."""
    p = Path(path).resolve()
    name = p.parent.name if p.name in ("final", "") else p.name
    label, i = name or "model", 2
    while label in taken:
        label, i = f"{name}-{i}", i + 1
    return label


def parse_trained(specs: list[str]) -> dict[str, str]:
    """`PATH` or `LABEL=PATH` entries to {label: path}, labels unique and never 'base'."""
    out: dict[str, str] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = model_label(spec, set(out) | {"base"}), spec
        elif not label or not path:
            raise ProbeError(f"--trained {spec!r}: expected PATH or LABEL=PATH")
        if label in out or label == "base":
            raise ProbeError(f"--trained: the label {label!r} is used twice (name models with LABEL=PATH)")
        out[label] = path
    return out


@dataclass(frozen=True)
class ProbeCommand(ProbeSettings):
    """The probe command's settings: which models, where to write, and every ProbeSettings key. One flat
    namespace, so a config file reads ``base: DIR``, ``n: 64``, ``thresholds: {budget_K: 64}``, ``search: null``."""

    base: str = setting("", "the base model folder (any Hugging Face causal LM); required", metavar="DIR")
    trained: tuple[str, ...] = setting((), "a trained model folder, PATH or LABEL=PATH; repeat for several",
                                       repeat=True, metavar="[LABEL=]PATH")
    samples: tuple[str, ...] = setting(
        (), "instead of models: a JSONL of samples made elsewhere (prompt, completion, optionally reward and "
        "logprob; or an lm-eval --log_samples file), FILE or LABEL=FILE; the first (or base=FILE) is the base; "
        "repeat for trained models (docs/probe.md)", repeat=True, metavar="[LABEL=]FILE")
    out: str = setting("", "output folder (default runs/probe-<time>)", metavar="DIR")
    progress: bool = setting(True, "progress bars on stderr (the flag turns them off)", flag="--no-progress")


def add_probe_arguments(parser) -> None:
    """``reweightlab probe``'s arguments: every ProbeCommand field as a flag (help and default from the
    field), ``--config FILE`` and trailing ``key=value`` overrides."""
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="settings by key, e.g. n=64 thresholds.budget_K=64 search=null (after --config, "
                             "before the flags)")
    parser.add_argument("--config", metavar="FILE",
                        help="a YAML or TOML file of settings by key (base, trained, n, thresholds: {budget_K}, ...)")
    measure = [key for key, _, _ in describe(ProbeSettings)]
    add_flags(parser.add_argument_group("models and output"), ProbeCommand, skip=tuple(measure))
    add_flags(parser.add_argument_group("what is measured, and with which budgets"), ProbeSettings)
    # the old spellings, refused with a pointer to the new ones (argparse would only say "unrecognized")
    parser.add_argument("--prompts", dest="_old_prompts", default=argparse.SUPPRESS, help=argparse.SUPPRESS)


RENAMED = ("--split chooses the prompts (test, train or both), as datasets and lm-eval mean a split; the task "
           "variant (the rule) is --variant")


def _refuse_old_spellings(args) -> None:
    if hasattr(args, "_old_prompts"):
        raise ConfigError(f"--prompts is now --split ({RENAMED})")
    if getattr(args, "split", None) not in (None, *PROMPT_SPLITS):
        raise ConfigError(f"--split {args.split}: {RENAMED}; did you mean --variant {args.split}?")


def probe_settings(cmd: ProbeCommand, user_keys: set[str]) -> ProbeSettings:
    """The ProbeSettings of a command, with the two rules the flags have always had: the search is as long
    as the samples (max_new_tokens) unless search.max_new_tokens is set, and keep_per_prompt is cut to n."""
    search = cmd.search
    if search is not None and "search.max_new_tokens" not in user_keys:
        try:
            search = dataclasses.replace(search, max_new_tokens=cmd.max_new_tokens)
        except ValueError as exc:
            raise ConfigError(f"config key 'max_new_tokens': {exc}") from None
    values = {f.name: getattr(cmd, f.name) for f in dataclasses.fields(ProbeSettings)}
    return ProbeSettings(**values | {"search": search, "keep_per_prompt": min(cmd.keep_per_prompt, cmd.n)})


def probe_from_cli(args) -> dict:
    """Run the probe that a parsed command line asks for: file < key=value overrides < flags."""
    from datetime import datetime

    _refuse_old_spellings(args)
    try:
        cmd, user_keys = load(ProbeCommand, args.config, args.overrides, flag_values(args, ProbeCommand))
    except ConfigError as exc:
        if "config key 'prompt_split'" in str(exc):
            raise ConfigError("config key 'prompt_split' is now 'split' (test, train or both); the task variant "
                              "is 'variant'") from None
        raise
    out = Path(cmd.out) if cmd.out else Path("runs") / f"probe-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if cmd.samples:
        from reweightlab.probe.from_samples import parse_samples, probe_samples

        if cmd.base or cmd.trained:
            raise ConfigError("--samples reads samples made elsewhere and loads no model; give either --samples "
                              "or --base/--trained, not both")
        return probe_samples(parse_samples(list(cmd.samples)), cmd, out, user_keys=user_keys,
                             progress=cmd.progress)
    if not cmd.base:
        raise ConfigError("config key 'base': the base model folder is required (--base DIR, or --samples FILE)")
    return run_probe(cmd.base, parse_trained(list(cmd.trained)), probe_settings(cmd, user_keys), out,
                     progress=cmd.progress)


def _load(base: str, trained: dict[str, str], device: str):
    """Tokenizers and models of every folder; the same-tokenizer check before any model is loaded."""
    from reweightlab.models import load_model, load_tokenizer
    from reweightlab.models.loading import check_causal_lm
    from reweightlab.probe.distance import check_same_tokenizer

    paths = {"base": base} | trained
    for p in paths.values():
        check_causal_lm(p)
    toks = {label: load_tokenizer(p) for label, p in paths.items()}
    for label, tok in toks.items():
        if label != "base":
            try:
                check_same_tokenizer(toks["base"], tok)
            except ValueError as exc:
                raise ProbeError(f"{trained[label]} vs base {base}: {exc}") from None
    models = {label: load_model(p, device=device) for label, p in paths.items()}
    vocab = {label: m.get_output_embeddings().weight.shape[0] for label, m in models.items()}
    for label, size in vocab.items():
        if size != vocab["base"]:
            raise ProbeError(f"{trained[label]} outputs {size} logits per position, the base {base} {vocab['base']}: "
                             "per-token KL needs the same vocabulary")
    return toks["base"], models


def _check_task(settings: ProbeSettings):
    from reweightlab.tasks.user_task import is_data_file, resolve_task

    # UnknownTaskError names the registered tasks; a data file is read and checked row by row here
    extra = {}
    if is_data_file(settings.task):
        extra = {"success_threshold": settings.success_threshold, "reward_timeout": settings.reward_timeout}
    task = resolve_task(settings.task, settings.reward, **extra)
    variants = getattr(task, "variants", None)
    if variants is not None and settings.variant not in variants:
        raise ProbeError(f"task {settings.task!r} has no variant {settings.variant!r}; it has {list(variants)}")
    if settings.split not in PROMPT_SPLITS:
        raise ProbeError(f"split must be 'train', 'test' or 'both', got {settings.split!r}")
    if settings.revision_attempts > 1 and not has_feedback(task):
        raise ProbeError(f"--revision-attempts {settings.revision_attempts} needs a task whose verifier gives "
                         f"feedback (a feedback hook); task {settings.task!r} has none")
    return task


def check_out(out_dir: Path) -> None:
    """--out must be new or empty (files.check_new_folder): a probe never writes among others' files."""
    if (out_dir / "probe.json").exists():
        raise ProbeError(f"{out_dir} already holds a probe (probe.json); choose another --out")
    try:
        check_new_folder(out_dir, "--out")
    except FolderError as exc:
        raise ProbeError(str(exc)) from None


def _check_fits(task, problems, tokenizer, models, settings: ProbeSettings) -> None:
    """Every prompt with what the probe appends to it (sampled tokens; each listed solution, which the
    likelihood pass scores) within the smallest context of the probed models: a ProbeError naming the
    row, before any batch is built (an over-long reference answer must not exhaust the memory)."""
    from reweightlab.data.encoding import encode_completions, encode_prompts
    from reweightlab.data.lengths import TooLongError, check_lengths, context_length, problem_where

    contexts = [c for c in (context_length(m.config) for m in models.values()) if c is not None]
    if not contexts:
        return
    context = min(contexts)
    prompt_len = [len(ids) for ids in encode_prompts(tokenizer, [p.prompt for p in problems])]
    attempts = settings.revision_attempts if settings.revision_attempts > 1 and has_feedback(task) else 1
    new = settings.max_new_tokens * attempts
    try:
        check_lengths([n + new for n in prompt_len], context, lambda i: problem_where(task, problems[i]),
                      f"the prompt + {new} sampled tokens", "lower --max-new-tokens or shorten the prompt")
        for i, prob in enumerate(problems):
            sols = task.solutions(prob) or []
            if sols:
                longest = max(len(ids) for ids in encode_completions(tokenizer, sols))
                check_lengths([prompt_len[i] + longest], context, lambda _i, prob=prob: problem_where(task, prob),
                              "the prompt + its longest reference solution", "shorten the row's answer")
    except TooLongError as exc:
        raise ProbeError(str(exc)) from None


@contextmanager
def owned_out(out_dir: Path) -> Iterator[None]:
    """--out locked for the block (a second probe into it is refused); a block that does not finish leaves no
    folder that it made (its temporary files and the empty folders removed), and never touches one it did not."""
    created = not out_dir.exists()
    try:
        lock = FolderLock(out_dir, "--out").acquire()
    except FolderError as exc:
        raise ProbeError(str(exc)) from None
    try:
        yield
    except BaseException:
        lock.release()
        if created:
            remove_temporaries(out_dir)
            _remove_empty_tree(out_dir)
        raise
    lock.release()


def _remove_empty_tree(folder: Path) -> None:
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(sub.iterdir()):
            sub.rmdir()
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _problems(task, settings: ProbeSettings) -> list:
    """The probed prompts; with split 'both', half seen in training (train split), half held out."""
    half = settings.num_prompts // 2
    parts = ([("train", half), ("test", settings.num_prompts - half)] if settings.split == "both"
             else [(settings.split, settings.num_prompts)])
    try:
        return [p for split, n in parts for p in task.problems(settings.variant, split, n, settings.seed)]
    except ValueError as exc:
        raise ProbeError(str(exc)) from None


def by_split(problems, probes: dict, settings: ProbeSettings) -> dict[str, SplitFigures] | None:
    """With seen and held-out prompts mixed, every model's pass@1 and each comparison's Δpass@1 and its
    elicitation / creation split, on each part apart (intervals over that part's prompts)."""
    from reweightlab.probe.compare import gain_split
    from reweightlab.probe.intervals import Resamples

    splits = sorted({p.split for p in problems})
    if len(splits) < 2:
        return None
    out = {}
    for split in splits:
        idx = torch.tensor([i for i, p in enumerate(problems) if p.split == split])
        rs = Resamples(len(idx), settings.bootstrap, seed=settings.seed)
        base = probes["base"]
        regimes = [base.regimes_of(settings.estimator)[i] for i in idx.tolist()]
        out["seen" if split == "train" else "unseen"] = SplitFigures(
            prompts=len(idx), seen_in_training=split == "train",
            pass1={label: rs.mean(m.samples.p_P[idx]) for label, m in probes.items()},
            vs_base={label: gain_split(regimes, (m.samples.p_P - base.samples.p_P)[idx], rs)
                     for label, m in probes.items() if label != "base"},
        )
    return out


def training_beta(path: str | Path) -> float | None:
    """The KL temperature a model was trained with, from its run folder's config.json (``<run>/final``
    or ``<run>/checkpoints/step-N``): rl.kl_beta of an RL run with a KL penalty, else None. Only JSON is read."""
    import json

    run = Path(path).resolve().parent
    cfg = (run.parent if run.name == "checkpoints" else run) / "config.json"
    try:
        raw = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return None
    method = REGISTRY.get(raw.get("method"))
    beta = (raw.get("rl") or {}).get("kl_beta") if method is not None and method.is_rl else None
    return float(beta) if isinstance(beta, int | float) and beta > 0 else None


def run_probe(base: str, trained: dict[str, str], settings: ProbeSettings, out_dir: str | Path, *,
              progress: bool = True, log=print) -> dict:
    """Probe `base` and each trained model; write probe.json + probe_prompts.jsonl (and with
    keep_samples, samples/*.jsonl) into `out_dir`; return the summary."""
    torch.set_flush_denormal(True)
    t_start = time.perf_counter()
    settings.check()
    task = _check_task(settings)
    out_dir = Path(out_dir)
    check_out(out_dir)
    tokenizer, models = _load(base, trained, settings.device)
    use_tokenizer(task, tokenizer, chat_template=settings.chat_template)  # a data file's chat template
    problems = _problems(task, settings)
    if settings.estimator == "likelihood" and task.solutions(problems[0]) is None:
        raise ProbeError(f"estimator 'likelihood' needs a task that lists its solutions; {settings.task!r} does not "
                         "(use --estimator sampling)")
    _check_fits(task, problems, tokenizer, models, settings)
    train_betas = {label: training_beta(p) for label, p in trained.items()}
    betas = settings.resolved_betas(tuple(b for b in train_betas.values() if b is not None))
    with owned_out(out_dir):  # locked until the probe's files are written; removed if it made it and failed
        writer = None
        try:
            writer = SampleWriter(out_dir / "samples", problems) if settings.keep_samples else None
            probes = {}
            for i, (label, model) in enumerate(tqdm(models.items(), desc=f"probing ({settings.variant})",
                                                    disable=not progress)):
                probes[label] = probe_model(model, tokenizer, task, problems, settings, label=label, index=i,
                                            progress=progress, recorder=writer)
            summary, rows = _summarise(base, trained, settings, task, problems, models, probes, betas, train_betas)
            files = None if writer is None else [str(p.relative_to(out_dir)) for p in writer.finish()]
            summary = dataclasses.replace(summary, seconds=round(time.perf_counter() - t_start, 1),
                                          samples_files=files)
            write_outputs(out_dir, summary, rows)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    written = as_json(summary)
    log(format_probe_table(written))
    log(f"wrote {out_dir / 'probe.json'} and {out_dir / 'probe_prompts.jsonl'}")
    return written


def _summarise(base, trained, settings, task, problems, models, probes, betas,
               train_betas) -> tuple[ProbeSummary, list]:
    """probe.json's content (but the total time) and the per-prompt rows, from the per-model probes."""
    from reweightlab.probe.compare import compare, gap_figures
    from reweightlab.probe.gap import reward_classes
    from reweightlab.probe.intervals import Resamples

    classes_C = reward_classes(*(m.samples.rewards_PN for m in probes.values()))
    success = float(getattr(task, "success_score", 1.0))
    per_model = {label: model_summary(m, settings) for label, m in probes.items()}
    rs = Resamples(len(problems), settings.bootstrap, seed=settings.seed)
    base_fe, base_gaps = gap_figures(probes["base"], None, None, betas, success, rs, classes_C)
    per_model["base"] = dataclasses.replace(per_model["base"], free_energy=base_fe)
    gaps = {"base": base_gaps[settings.beta]}
    vs_base = {}
    for label in trained:
        versus, gaps[label] = compare(models[label], models["base"], probes["base"], probes[label], settings,
                                      betas=betas, success_score=success, classes_C=classes_C)
        vs_base[label] = dataclasses.replace(versus, training_beta=train_betas[label])
    summary = ProbeSummary(
        version=PROBE_VERSION, task=settings.task, variant=settings.variant, split=settings.split,
        prompts_seen_in_training={"train": True, "test": False, "both": "half"}[settings.split],
        num_prompts=len(problems), estimator=settings.estimator,
        independence=(f"base regimes from {settings.thresholds.budget_K} samples per prompt of their own seed; "
                      f"pass@k and gains from the n = {settings.n} samples (other seeds); a trained model's "
                      "regimes from the first K of its n samples; every model samples with its own seed"),
        betas=betas, reward_classes=classes_C.tolist(), settings=settings.to_dict(),
        models={"base": str(base)} | {k: str(v) for k, v in trained.items()},
        per_model=per_model, vs_base=vs_base, by_split=by_split(problems, probes, settings),
    )
    return summary, prompt_rows(problems, probes, gaps, settings.estimator)


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _ci(fig: dict | None, spec: str, *, difference: bool = True) -> str:
    """``value [low, high]`` of an interval-backed figure; a difference gets ``*`` when its interval excludes 0."""
    from reweightlab.probe.intervals import excludes_zero

    if not fig or fig.get("value") is None:
        return "-"
    lo, hi = fig["ci95"]
    mark = "*" if difference and excludes_zero(fig) else " "
    return f"{fig['value']:{spec}} [{_fmt(lo, spec)}, {_fmt(hi, spec)}]{mark}"


def format_probe_table(summary: dict) -> str:
    """Two tables: each model alone, then each trained model against the base with 95% paired intervals."""
    kmax = max(int(k) for k in summary["per_model"]["base"]["pass_at_k"])
    beta = f"{summary['settings']['beta']:g}"
    s = summary["settings"]
    lines = [f"probe: {summary['task']} {summary['variant']} ({summary['split']} prompts: "
             f"{summary['num_prompts']}, n = {s['n']}, K = {s['thresholds']['budget_K']}, regimes by "
             f"{summary['estimator']})"]
    head = f"{'model':<16}{'pass@1':>8}{f'pass@{kmax}':>10}  {'basin/tail/barr/sing':<21}{'distinct':>9}{'F gap':>8}"
    lines += [head, "-" * len(head)]
    for label, m in summary["per_model"].items():
        reg = "/".join(str(m["regimes"][r]) for r in ("basin", "tail", "barrier", "singularity"))
        fe = (summary["vs_base"].get(label) or {}).get("free_energy") or m.get("free_energy") or {}
        lines.append(f"{label:<16}{m['pass_at_k']['1']:>8.3f}{m['pass_at_k'][str(kmax)]:>10.3f}  {reg:<21}"
                     f"{m['diversity']['distinct_solutions_per_prompt']:>9.2f}"
                     f"{_fmt((fe.get(beta) or {}).get('gap', {}).get('value'), '.3f'):>8}")
    if summary["vs_base"]:
        lines.append("")
        head = (f"{'vs base':<16}{'Δpass@1':>23}{'k*':>21}{'elicitation':>25}{'creation':>25}"
                f"{'E/S':>8}{'NSCR':>23}{'KL/tok':>8}")
        lines += [head, "-" * len(head)]
        for label, v in summary["vs_base"].items():
            sp = v["support_prompts"]
            lines.append(
                f"{label:<16}{_ci(v['delta_pass_at_k']['1'], '+.3f'):>23}"
                f"{_ci(v['crossover_k'], '.1f', difference=False):>21}"
                f"{_ci(v['pass1_gain']['elicitation'], '+.3f'):>25}{_ci(v['pass1_gain']['creation'], '+.3f'):>25}"
                f"{int(sp['E']['value']):>4}/{int(sp['S']['value']):<3}"
                + f"{_ci(sp['NSCR'], '+.2f'):>23}"
                f"{_fmt(((v.get('distance') or {}).get('reverse') or {}).get('kl_exact_per_token'), '.3f'):>8}"
            )
    lines += _revision_lines(summary)
    lines.append("[low, high]: 95% paired bootstrap interval over prompts (* : it excludes 0). elicitation / "
                 "creation: the pass@1 gain on prompts the base reached within K samples (basin, tail) / did not "
                 "(barrier, singularity). E/S: "
                 "prompts only the model / only the base reached within K samples. KL/tok: exact KL(model || base) "
                 f"per token on the model's samples. F gap: F_beta[model] - F* at beta = {beta}.")
    return "\n".join(lines)


def _revision_lines(summary: dict) -> list[str]:
    """Single-attempt and within-episode success side by side, when the probe ran revision episodes."""
    base = summary["per_model"]["base"].get("revision")
    if base is None:
        return []
    within = f"within {base['attempts']}"
    head = (f"{'revision':<16}{'attempt 1':>23}{within:>23}{'gain':>23}"
            f"{'Δwithin vs base':>25}{'found':>7}")
    lines = ["", head, "-" * len(head)]
    for label, m in summary["per_model"].items():
        r = m["revision"]
        delta = (summary["vs_base"].get(label) or {}).get("revision") or {}
        lines.append(f"{label:<16}{_ci(r['success_first_attempt'], '.3f', difference=False):>23}"
                     f"{_ci(r['success_within_episode'], '.3f', difference=False):>23}"
                     f"{_ci(r['revision_gain'], '+.3f'):>23}"
                     f"{_ci(delta.get('delta_success_within_episode'), '+.3f'):>25}"
                     f"{r['found_by_revision']:>3}/{r['unreached_prompts']:<3}")
    lines.append(f"revision: {base['episodes_per_prompt']} episodes per prompt of up to {base['attempts']} attempts, "
                 "the verifier's feedback after each failed one; gain = within-episode minus first-attempt "
                 "success (same episodes); found: unreached prompts an episode solved at a later attempt (barrier).")
    return lines
