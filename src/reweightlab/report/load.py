"""Read a run folder (a demo's, or a lone `reweightlab probe --out DIR`) into one plain structure.

Two sources hold the same figures in two shapes: a demo folder's summary.json (`eval`, per model
and rule) and each probe.json (`per_model` + `vs_base`). Both are mapped to `ModelEval` rows here,
so the page is built by one code path whichever folder it was given. Nothing is computed beyond
reading, except the pass@1 gain where probe.json is absent (elicitation + creation, its two parts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

VARIANTS = ("id", "ood")
VARIANT_NAMES = {"id": "in distribution", "ood": "out of distribution"}


class ReportError(ValueError):
    """A run folder that cannot be reported: a file missing or malformed (the message names it)."""


@dataclass(frozen=True)
class ModelEval:
    """One model under one rule: what the table, the pass@k curves and the scatter need."""

    pass_at_k: dict[int, float]
    ci95: dict[int, tuple[float, float]]
    free_energy_gap: float | None = None
    # None for the base model, which is not compared with itself
    pass1_gain: float | None = None
    elicitation: float | None = None
    creation: float | None = None
    kl_per_token: float | None = None
    crossover_k: float | None = None


@dataclass
class RunData:
    """Everything the page shows about one folder; `evals[variant][model]`, base first."""

    path: Path
    kind: str  # "demo" (summary.json), "probe" (probe.json only) or "control" (control.json only)
    models: list[str]
    evals: dict[str, dict[str, ModelEval]] = field(default_factory=dict)
    transitions: dict[str, dict[str, dict[str, dict[str, int]]]] = field(default_factory=dict)
    regimes: list[str] = field(default_factory=list)
    metrics: dict[str, list[dict]] = field(default_factory=dict)
    train_seconds: dict[str, float] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)  # one-line descriptions of the run for the page header

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def methods(self) -> list[str]:
        return [m for m in self.models if m != "base"]


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ReportError(f"{path} is missing")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path} should hold a JSON object, found {type(data).__name__}")
    return data


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise ReportError(f"{path} is missing (training metrics of this method)")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReportError(f"{path}, line {lineno}: not valid JSON: {exc}") from None
        if not isinstance(row, dict) or "step" not in row:
            raise ReportError(f"{path}, line {lineno}: expected an object with a 'step'")
        rows.append(row)
    return rows


def _curve(raw: dict, path: Path, where: str) -> dict[int, float]:
    try:
        return {int(k): float(v) for k, v in sorted(raw.items(), key=lambda kv: int(kv[0]))}
    except (TypeError, ValueError, AttributeError):
        raise ReportError(f"{path}: {where} should map k to a number") from None


def _ci(raw: dict, path: Path, where: str) -> dict[int, tuple[float, float]]:
    try:
        return {int(k): (float(v[0]), float(v[1])) for k, v in raw.items()}
    except (TypeError, ValueError, AttributeError, IndexError):
        raise ReportError(f"{path}: {where} should map k to [low, high]") from None


def _from_summary_eval(r: dict, path: Path, where: str) -> ModelEval:
    """summary.json's eval[model][variant] (as written by `demo._probe_all`)."""
    elicit, create = r.get("elicitation"), r.get("creation")
    return ModelEval(
        pass_at_k=_curve(r["pass_at_k"], path, f"{where}.pass_at_k"),
        ci95=_ci(r["pass_at_k_ci95"], path, f"{where}.pass_at_k_ci95"),
        free_energy_gap=r.get("free_energy_gap"),
        pass1_gain=None if elicit is None or create is None else elicit + create,
        elicitation=elicit, creation=create, kl_per_token=r.get("kl_to_base_per_token"),
        crossover_k=r.get("crossover_k_vs_base"),
    )


def _from_probe(probe: dict, model: str, path: Path) -> ModelEval:
    m = probe["per_model"][model]
    where = f"per_model.{model}"
    pk = _curve(m["pass_at_k"], path, f"{where}.pass_at_k")
    ci = _ci(m["pass_at_k_ci95"], path, f"{where}.pass_at_k_ci95")
    if model == "base":
        return ModelEval(pk, ci, free_energy_gap=(m.get("free_energy") or {}).get("mean_gap"))
    v = probe["vs_base"][model]
    gain = v["pass1_gain"]
    return ModelEval(
        pk, ci, free_energy_gap=v["free_energy"]["mean_gap"], pass1_gain=gain["total"],
        elicitation=gain["elicitation"], creation=gain["creation"],
        kl_per_token=v["distance"]["kl_exact_per_token"], crossover_k=v.get("crossover_k"),
    )


def _load_probe(probe: dict, path: Path, run: RunData, variant: str, *, with_evals: bool) -> None:
    """Transitions (and, for a probe-only folder, the evals) of one probe.json into `run`."""
    try:
        models = list(probe["per_model"])
        if "base" not in models:
            raise ReportError(f"{path}: per_model has no 'base' entry")
        if with_evals:
            run.evals[variant] = {m: _from_probe(probe, m, path) for m in ["base"] + [x for x in models if x != "base"]}
        else:  # the summary's figures stand; probe.json adds the exact gain and the regime moves
            for m in run.evals.get(variant, {}):
                if m != "base" and m in probe["vs_base"]:
                    run.evals[variant][m] = replace(run.evals[variant][m],
                                                    pass1_gain=probe["vs_base"][m]["pass1_gain"]["total"])
        run.transitions[variant] = {m: v["transitions"] for m, v in probe["vs_base"].items()}
    except KeyError as exc:
        raise ReportError(f"{path}: missing key {exc}") from None
    except (TypeError, AttributeError) as exc:
        raise ReportError(f"{path}: unexpected structure ({exc})") from None
    if not run.regimes:
        first = next(iter(run.transitions[variant].values()), {})
        run.regimes = list(first)
    if with_evals:
        s = probe.get("settings", {})
        run.facts.append(f"{VARIANT_NAMES.get(variant, variant)}: task {probe.get('task', '?')}, "
                         f"{probe.get('num_prompts', '?')} prompts x {s.get('n', '?')} samples, "
                         f"estimator {probe.get('estimator', '?')}")


def _load_demo(folder: Path, summary_path: Path) -> RunData:
    summary = _read_json(summary_path)
    try:
        ev, methods = summary["eval"], summary["methods"]
        if "base" not in ev:
            raise ReportError(f"{summary_path}: eval has no 'base' entry")
        models = ["base"] + [m for m in ev if m != "base"]
        run = RunData(folder, "demo", models)
        variants = [v for v in VARIANTS if v in ev["base"]]
        if not variants:
            raise ReportError(f"{summary_path}: eval.base holds neither 'id' nor 'ood' results")
        for v in variants:
            run.evals[v] = {m: _from_summary_eval(ev[m][v], summary_path, f"eval.{m}.{v}") for m in models}
        run.train_seconds = {m: float(info["train_seconds"]) for m, info in methods.items()}
        probes = {v: (summary.get("probe") or {}).get(v, {}).get("dir", f"probe-{v}") for v in variants}
        budget = summary.get("budget", {})
    except KeyError as exc:
        raise ReportError(f"{summary_path}: missing key {exc}") from None
    except (TypeError, AttributeError) as exc:
        raise ReportError(f"{summary_path}: unexpected structure ({exc})") from None
    for v, sub in probes.items():
        path = folder / sub / "probe.json"
        _load_probe(_read_json(path), path, run, v, with_evals=False)
    # by name inside the folder, not summary's absolute run_dir: a moved or copied folder still renders
    run.metrics = {m: _read_jsonl(folder / m / "metrics.jsonl") for m in run.methods if m in methods}
    run.facts.append(
        f"{'quick demo' if summary.get('quick') else 'demo'}, seed {summary.get('seed', '?')}: "
        f"{len(run.methods)} methods, {budget.get('sequences_per_method', '?')} training sequences each; "
        f"evaluated on {budget.get('eval_prompts', '?')} held-out prompts x {budget.get('eval_samples', '?')} "
        f"samples per rule; {summary.get('total_seconds', '?')} s in all")
    return run


def load_run(folder: str | Path) -> RunData:
    """A demo folder (summary.json + probe-*/probe.json + <method>/metrics.jsonl) or a probe folder
    (probe.json alone). Raises ReportError naming the file that is missing or malformed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder} is not a folder")
    summary, probe = folder / "summary.json", folder / "probe.json"
    if summary.exists():
        return _load_demo(folder, summary)
    if probe.exists():
        head = _read_json(probe)
        variant = str(head.get("variant", "id"))
        models = list(head.get("per_model") or {})
        run = RunData(folder, "probe", ["base"] + [m for m in models if m != "base"])
        _load_probe(head, probe, run, variant, with_evals=True)
        return run
    if (folder / "control.json").exists():  # `reweightlab control run --out DIR`: only the control section
        return RunData(folder, "control", [], facts=["control policies from offline data (control.json)"])
    raise ReportError(
        f"{folder} holds neither summary.json (a demo run), probe.json (a probe run) nor control.json "
        "(a control run)"
    )
