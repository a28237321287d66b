"""Load the models, run the probe (study.py) for every one, write probe.json + probe_prompts.jsonl, print a table."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from reweightlab.probe.study import (
    PROBE_VERSION,
    ProbeError,
    ProbeSettings,
    _model_summary,
    base_free_energy,
    compare,
    estimator_name,
    probe_model,
    prompt_rows,
    write_outputs,
)


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
    if settings.prompt_split not in ("train", "test"):
        raise ProbeError(f"prompt split must be 'train' or 'test', got {settings.prompt_split!r}")
    return task


def _check_out(out_dir: Path) -> None:
    if (out_dir / "probe.json").exists():
        raise ProbeError(f"{out_dir} already holds a probe (probe.json); choose another --out")
    if out_dir.exists() and not out_dir.is_dir():
        raise ProbeError(f"--out {out_dir} exists and is not a folder")


def run_probe(base: str, trained: dict[str, str], settings: ProbeSettings, out_dir: str | Path, *,
              progress: bool = True, log=print) -> dict:
    """Probe `base` and each trained model; write the two files into `out_dir`; return the summary."""
    import torch

    torch.set_flush_denormal(True)
    t_start = time.perf_counter()
    settings.check()
    task = _check_task(settings)
    out_dir = Path(out_dir)
    _check_out(out_dir)
    tokenizer, models = _load(base, trained, settings.device)
    if hasattr(task, "use_tokenizer"):  # a data file's conversations render with the model's chat template
        task.use_tokenizer(tokenizer, chat_template=settings.chat_template)
    problems = task.problems(settings.variant, settings.prompt_split, settings.num_prompts, settings.seed)
    primary = estimator_name(settings, task.solutions(problems[0]) is not None)
    out_dir.mkdir(parents=True, exist_ok=True)

    probes = {}
    for label, model in tqdm(models.items(), desc=f"probing ({settings.variant})", disable=not progress):
        probes[label] = probe_model(model, tokenizer, task, problems, settings, label=label, progress=progress)
    per_model = {label: _model_summary(m, settings, primary) for label, m in probes.items()}
    base_gap = base_free_energy(probes["base"], settings)
    gaps = {"base": base_gap.pop("gap_P")}
    per_model["base"]["free_energy"] = base_gap
    vs_base = {}
    for label in trained:
        vs_base[label] = compare(models[label], models["base"], probes["base"], probes[label], settings, primary)
        gaps[label] = vs_base[label]["free_energy"].pop("gap_P")
    summary = {
        "version": PROBE_VERSION, "task": settings.task, "variant": settings.variant,
        "prompt_split": settings.prompt_split, "num_prompts": len(problems), "estimator": primary,
        "settings": settings.to_dict(), "models": {"base": str(base)} | {k: str(v) for k, v in trained.items()},
        "per_model": per_model, "vs_base": vs_base, "seconds": round(time.perf_counter() - t_start, 1),
    }
    write_outputs(out_dir, summary, prompt_rows(problems, probes, gaps, primary))
    log(format_probe_table(summary))
    log(f"wrote {out_dir / 'probe.json'} and {out_dir / 'probe_prompts.jsonl'}")
    return summary


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def format_probe_table(summary: dict) -> str:
    """One line per model: pass@1, pass@kmax, k*, regime counts, elicitation/creation, KL, free-energy gap."""
    kmax = max(int(k) for k in summary["per_model"]["base"]["pass_at_k"])
    head = (f"{'model':<14}{'pass@1':>8}{f'pass@{kmax}':>10}{'k*':>7}  {'basin/tail/barr/sing':<21}"
            f"{'elicit':>8}{'create':>8}{'lost':>6}{'KL/tok':>8}{'F gap':>8}")
    lines = [f"probe: {summary['task']} {summary['variant']} ({summary['prompt_split']} prompts: "
             f"{summary['num_prompts']}, n = {summary['settings']['n']}, regimes by {summary['estimator']})",
             head, "-" * len(head)]
    for label, m in summary["per_model"].items():
        v = summary["vs_base"].get(label, {})
        reg = "/".join(str(m["regimes"][r]) for r in ("basin", "tail", "barrier", "singularity"))
        gain = v.get("pass1_gain", {})
        gap = v.get("free_energy", m.get("free_energy", {})).get("mean_gap")
        lines.append(
            f"{label:<14}{m['pass_at_k']['1']:>8.3f}{m['pass_at_k'][str(kmax)]:>10.3f}"
            f"{_fmt(v.get('crossover_k'), '.1f'):>7}  {reg:<21}{_fmt(gain.get('elicitation'), '+.3f'):>8}"
            f"{_fmt(gain.get('creation'), '+.3f'):>8}{_fmt(v.get('support_shrinkage', {}).get('lost'), 'd'):>6}"
            f"{_fmt(v.get('distance', {}).get('kl_exact_per_token'), '.3f'):>8}{_fmt(gap, '.3f'):>8}"
        )
    lines.append("elicit/create: pass@1 gain on prompts the base reached within budget (basin, tail) / did not; "
                 "lost: prompts the base reached and the model no longer does; KL/tok: exact KL(model || base) "
                 "per token on the model's samples; F gap: F_beta[model] - F* (0 = the optimal reweighting)")
    return "\n".join(lines)
