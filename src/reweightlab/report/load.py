"""Read a run folder (a demo's, or a lone `reweightlab probe --out DIR`) into one plain structure.

Every figure of a model comes from a probe.json (version 2: `per_model` + `vs_base`, each difference
with its 95% paired bootstrap interval), so a demo folder and a probe folder are read by one code
path. A demo folder adds its summary.json: which trained model (`<method>-s<seed>`) belongs to which
method, the spread of each figure across training seeds (`across_seeds`), training times, and where
each model's metrics.jsonl is. Any folder may also hold the claims.json of `reweightlab study` (read
by claims.py). Nothing is computed here: every number on the page is in those files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reweightlab.files import json_lines

if TYPE_CHECKING:
    from reweightlab.report.claims import Claims

VARIANTS = ("id", "ood")
VARIANT_NAMES = {"id": "in distribution", "ood": "out of distribution"}
SUPPORT_RATIOS = ("SRR", "NDR", "SDS", "NSCR")
SUPPORT_LEVELS = {"prompts": "prompt level", "solutions": "solution level"}


class ReportError(ValueError):
    """A run folder that cannot be reported: a file missing or malformed (the message names it)."""


@dataclass(frozen=True)
class Interval:
    """An interval-backed figure: its value and 95% bounds (any of them None where undefined)."""

    value: float | None
    lo: float | None = None
    hi: float | None = None
    defined: float | None = None  # k* only: the share of bootstrap resamples in which it is defined

    @property
    def excludes_zero(self) -> bool:
        return self.lo is not None and self.hi is not None and (self.lo > 0 or self.hi < 0)


@dataclass(frozen=True)
class Spread:
    """One figure across the training seeds of a method (summary.json's across_seeds)."""

    mean: float | None
    std: float | None
    n: int


@dataclass(frozen=True)
class FreeEnergy:
    """The free-energy gap at one beta and its two parts (between + within reward classes)."""

    gap: Interval
    between: Interval
    within: Interval
    gap_minus_base: Interval | None = None  # trained models only


@dataclass(frozen=True)
class Comparison:
    """A trained model against the base (probe.json's vs_base), every figure with its interval."""

    delta_pass1: Interval
    crossover_k: Interval
    elicitation: Interval
    creation: Interval
    support_E: Interval
    support_S: Interval
    kl: Interval  # KL(model || base) per token, on the model's samples
    kl_forward: Interval  # KL(base || model) per token, on the base's samples
    support: dict[str, dict[str, Interval]]  # level ("prompts", "solutions") -> SRR, NDR, SDS, NSCR
    training_beta: float | None = None


@dataclass(frozen=True)
class ModelEval:
    """One model under one rule: what the tables and the figures need."""

    pass_at_k: dict[int, float]
    ci95: dict[int, tuple[float, float]]
    mean_reward: float | None
    regimes: dict[str, int]
    distinct: float | None  # distinct correct solutions per prompt
    free_energy: dict[float, FreeEnergy]  # beta -> gap, ascending beta
    vs: Comparison | None = None  # None for the base, which is not compared with itself
    revision: dict[str, Interval] | None = None  # first_attempt, within_episode (probe --revision-attempts)
    revision_attempts: int | None = None

    def free_energy_at(self, beta: float) -> FreeEnergy | None:
        return next((f for b, f in self.free_energy.items() if abs(b - beta) <= 1e-9 * max(1.0, beta)), None)


@dataclass
class RunData:
    """Everything the page shows about one folder; `evals[variant][label]`, base first."""

    path: Path
    kind: str  # "demo" (summary.json), "probe" (probe.json only), "control" or "claims" (that file only)
    models: list[str]  # labels: "base", then each trained model
    method_of: dict[str, str] = field(default_factory=dict)  # label -> method ("base" -> "base")
    evals: dict[str, dict[str, ModelEval]] = field(default_factory=dict)
    transitions: dict[str, dict[str, dict[str, dict[str, int]]]] = field(default_factory=dict)
    regimes: list[str] = field(default_factory=list)
    metrics: dict[str, list[dict]] = field(default_factory=dict)  # label -> metrics.jsonl rows
    family: dict[str, str] = field(default_factory=dict)  # label -> "rl" or "offline", where metrics were found
    train_seconds: dict[str, float] = field(default_factory=dict)  # label -> seconds
    across: dict[str, dict[str, dict[str, Spread]]] = field(default_factory=dict)  # method -> variant -> figure
    beta: dict[str, float] = field(default_factory=dict)  # variant -> the beta of the tables' F gap
    num_seeds: int = 1
    facts: list[str] = field(default_factory=list)  # one-line descriptions of the run for the page header
    claims: Claims | None = None  # claims.json (`reweightlab study`), where the folder holds one

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def trained(self) -> list[str]:
        return [m for m in self.models if m != "base"]

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(self.method_of.get(m, m) for m in self.trained))

    def labels_of(self, method: str) -> list[str]:
        return [m for m in self.trained if self.method_of.get(m, m) == method]

    @property
    def first_labels(self) -> list[str]:
        """One model per method: its first training seed (the whole run for a probe folder)."""
        return [self.labels_of(m)[0] for m in self.methods]


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
        raise ReportError(f"{path} is missing (training metrics of this model)")
    rows = []
    for lineno, row in json_lines(path, lambda line_no, what: ReportError(f"{path}, line {line_no}: {what}")):
        if "step" not in row:
            raise ReportError(f"{path}, line {lineno}: expected an object with a 'step'")
        rows.append(row)
    return rows


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn a missing key or a value of the wrong shape into a ReportError naming the file."""
    try:
        yield
    except ReportError:
        raise
    except KeyError as exc:
        raise ReportError(f"{path}: missing key {exc}") from None
    except (TypeError, AttributeError, ValueError, IndexError) as exc:
        raise ReportError(f"{path}: unexpected structure ({exc})") from None


def _num(x) -> float | None:
    if x is not None and not isinstance(x, int | float):
        raise TypeError(f"expected a number or null, found {x!r}")
    return None if x is None else float(x)


def _interval(raw, where: str) -> Interval:
    if not isinstance(raw, dict):
        raise TypeError(f"{where} should be {{value, ci95}}, found {type(raw).__name__}")
    lo, hi = raw["ci95"]
    return Interval(_num(raw["value"]), _num(lo), _num(hi), _num(raw.get("defined")))


def _curve(raw: dict, where: str) -> dict[int, float]:
    if not isinstance(raw, dict):
        raise TypeError(f"{where} should map k to a number")
    return {int(k): float(v) for k, v in sorted(raw.items(), key=lambda kv: int(kv[0]))}


def _ci(raw: dict, where: str) -> dict[int, tuple[float, float]]:
    if not isinstance(raw, dict):
        raise TypeError(f"{where} should map k to [low, high]")
    return {int(k): (float(v[0]), float(v[1])) for k, v in raw.items()}


def _sweep(raw: dict, where: str) -> dict[float, FreeEnergy]:
    """probe.json's free_energy {beta: {gap, between, within[, gap_minus_base]}}, by ascending beta."""
    out = {}
    for b, p in raw.items():
        w = f"{where}.free_energy.{b}"
        extra = p.get("gap_minus_base")
        out[float(b)] = FreeEnergy(_interval(p["gap"], w + ".gap"), _interval(p["between"], w + ".between"),
                                   _interval(p["within"], w + ".within"),
                                   None if extra is None else _interval(extra, w + ".gap_minus_base"))
    return dict(sorted(out.items()))


def _kl(raw: dict | None) -> Interval:
    if raw is None:  # a probe of samples files: no model was run, so no KL (probe.json names it not_measured)
        return Interval(None)
    lo, hi = raw.get("kl_exact_per_token_ci95") or (None, None)
    return Interval(_num(raw["kl_exact_per_token"]), _num(lo), _num(hi))


def _comparison(v: dict, where: str) -> Comparison:
    sp, gain, dist = v["support_prompts"], v["pass1_gain"], v.get("distance") or {}
    levels = {"prompts": sp, "solutions": v["support_solutions"]}
    return Comparison(
        delta_pass1=_interval(v["delta_pass_at_k"]["1"], f"{where}.delta_pass_at_k.1"),
        crossover_k=_interval(v["crossover_k"], f"{where}.crossover_k"),
        elicitation=_interval(gain["elicitation"], f"{where}.pass1_gain.elicitation"),
        creation=_interval(gain["creation"], f"{where}.pass1_gain.creation"),
        support_E=_interval(sp["E"], f"{where}.support_prompts.E"),
        support_S=_interval(sp["S"], f"{where}.support_prompts.S"),
        kl=_kl(dist.get("reverse")), kl_forward=_kl(dist.get("forward")),
        support={lv: {r: _interval(raw[r], f"{where}.support_{lv}.{r}") for r in SUPPORT_RATIOS}
                 for lv, raw in levels.items()},
        training_beta=_num(v.get("training_beta")),
    )


def _model_eval(probe: dict, label: str) -> ModelEval:
    m, where = probe["per_model"][label], f"per_model.{label}"
    vs = None if label == "base" else probe["vs_base"][label]
    return ModelEval(
        pass_at_k=_curve(m["pass_at_k"], f"{where}.pass_at_k"),
        ci95=_ci(m["pass_at_k_ci95"], f"{where}.pass_at_k_ci95"),
        mean_reward=_num(m.get("mean_reward")),
        regimes={str(r): int(n) for r, n in m["regimes"].items()},
        distinct=_num((m.get("diversity") or {}).get("distinct_solutions_per_prompt")),
        # a trained model's sweep is in vs_base (with gap_minus_base); a probe of samples files has none
        free_energy=_sweep(m["free_energy"] if vs is None else vs.get("free_energy") or {}, where if vs is None else
                           f"vs_base.{label}"),
        vs=None if vs is None else _comparison(vs, f"vs_base.{label}"),
        revision=None if not m.get("revision") else {
            "first_attempt": _interval(m["revision"]["success_first_attempt"], f"{where}.revision"),
            "within_episode": _interval(m["revision"]["success_within_episode"], f"{where}.revision")},
        revision_attempts=None if not m.get("revision") else int(m["revision"]["attempts"]),
    )


def _load_probe(path: Path, run: RunData, variant: str, labels: list[str] | None) -> str:
    """One probe.json into `run`: each model's figures and regime moves under `variant`. `labels`: the
    trained models to read (every one in the file where None); each must be there. Returns the file's
    sentence on which samples are independent of which ('' if it has none)."""
    probe = _read_json(path)
    with _reading(path):
        per_model = probe["per_model"]
        if labels is None:
            labels = [m for m in per_model if m != "base"]
        for label in ["base", *labels]:
            if label not in per_model:
                raise ReportError(f"{path}: per_model has no {label!r} entry")
        run.evals[variant] = {m: _model_eval(probe, m) for m in ["base", *labels]}
        run.transitions[variant] = {m: probe["vs_base"][m]["transitions"] for m in labels}
        settings = probe["settings"]
        run.beta[variant] = float(settings.get("beta", 1.0))
        if not run.regimes:
            run.regimes = list(run.evals[variant]["base"].regimes)
        run.facts.append(
            f"{VARIANT_NAMES.get(variant, variant)}: task {probe.get('task', '?')}, {probe.get('num_prompts', '?')} "
            f"{probe.get('split', probe.get('prompt_split', ''))} prompts x {settings.get('n', '?')} samples, "
            "regimes by "
            f"{probe.get('estimator', '?')}; F gap at beta = {run.beta[variant]:g}")
    return str(probe.get("independence") or "")


RUN_FILES = ("config.json", "metrics.jsonl")  # what `reweightlab train` writes in every run folder


def training_run(model: str | Path, near: Path) -> Path | None:
    """The training run folder of a model folder, where it is one: the folder itself, or the run around
    ``<run>/final`` or ``<run>/checkpoints/step-N``, holding config.json and metrics.jsonl. A relative path is
    looked up from the current folder, then from `near` (the probe folder) and its parent. None for a model
    that `reweightlab train` did not write (a hub model, a samples file)."""
    p = Path(model)
    for candidate in ([p] if p.is_absolute() else [p, near / p, near.parent / p]):
        if not candidate.is_dir():
            continue
        run = (candidate.parent if candidate.name == "final" else
               candidate.parent.parent if candidate.parent.name == "checkpoints" else candidate)
        if all((run / f).is_file() for f in RUN_FILES):
            return run
    return None


def _family(run_dir: Path, rows: list[dict]) -> str:
    """'rl' or 'offline': from the run's config.json (resolved.data_source 'online' is RL), else from its rows
    (only RL runs log a reward)."""
    try:
        cfg = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        source = cfg["resolved"]["data_source"]
    except (OSError, ValueError, KeyError, TypeError):
        return "rl" if any("reward" in r for r in rows) else "offline"
    return "rl" if source == "online" else "offline"


def _training_logs(run: RunData, run_dirs: dict[str, Path]) -> None:
    for label, run_dir in run_dirs.items():
        run.metrics[label] = _read_jsonl(run_dir / "metrics.jsonl")
        run.family[label] = _family(run_dir, run.metrics[label])


def _across(raw: dict, methods: list[str]) -> dict[str, dict[str, dict[str, Spread]]]:
    return {m: {v: {f: Spread(_num(s["mean"]), _num(s["std"]), int(s["n"])) for f, s in figs.items()}
                for v, figs in raw[m].items()} for m in methods}


def _load_demo(folder: Path, summary_path: Path) -> RunData:
    summary = _read_json(summary_path)
    run = RunData(folder, "demo", ["base"], method_of={"base": "base"})
    run_dirs: dict[str, Path] = {}
    with _reading(summary_path):
        for method, info in summary["methods"].items():
            for s in info["seeds"].values():
                label = str(s["label"])
                run.models.append(label)
                run.method_of[label] = method
                run.train_seconds[label] = float(s["train_seconds"])
                # by name inside the folder, not the absolute run_dir: a moved or copied folder still renders;
                # a run_dir of null is a model that was not trained (the study's negative control)
                if "run_dir" not in s or s["run_dir"] is not None:
                    run_dirs[label] = folder / Path(str(s.get("run_dir") or label)).name
        run.num_seeds = max([len(info["seeds"]) for info in summary["methods"].values()] + [1])
        run.across = _across(summary["across_seeds"], run.methods)
        probes = {v: str(summary["probe"][v].get("dir", f"probe-{v}")) for v in VARIANTS if v in summary["probe"]}
        if not probes:
            raise ReportError(f"{summary_path}: probe holds neither 'id' nor 'ood' results")
        budget = summary.get("budget", {})
        seeds = ", ".join(dict.fromkeys(str(s) for info in summary["methods"].values() for s in info["seeds"]))
    independence = [_load_probe(folder / sub / "probe.json", run, v, run.trained) for v, sub in probes.items()]
    _training_logs(run, {m: run_dirs[m] for m in run.trained if m in run_dirs})
    run.facts += [f"independence: {s}" for s in dict.fromkeys(independence) if s]
    run.facts.insert(0, (
        f"{'quick demo' if summary.get('quick') else 'demo'}, seed {summary.get('seed', '?')}: "
        f"{len(run.methods)} methods x {run.num_seeds} training seeds ({seeds or '?'}), "
        f"{budget.get('sequences_per_method', '?')} training sequences each; evaluated on "
        f"{budget.get('eval_prompts', '?')} held-out prompts x {budget.get('eval_samples', '?')} samples per rule; "
        f"{summary.get('total_seconds', '?')} s in all"))
    return run


def load_run(folder: str | Path) -> RunData:
    """A demo folder (summary.json + probe-*/probe.json + <label>/metrics.jsonl), a probe folder (probe.json,
    and the training curves of each trained model whose run folder `training_run` finds), a control folder
    (control.json) or a study's claims alone (claims.json); any of them with the claims.json a study writes.
    Raises ReportError naming the file that is missing or malformed."""
    from reweightlab.report.claims import CLAIMS_FILE, read_claims  # claims.py imports this module's ReportError

    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder} is not a folder")
    claims = folder / CLAIMS_FILE
    run = _load_results(folder, claims_alone=claims.is_file())
    if claims.is_file():
        run.claims = read_claims(claims)
    return run


def _load_results(folder: Path, *, claims_alone: bool) -> RunData:
    summary, probe = folder / "summary.json", folder / "probe.json"
    if summary.exists():
        return _load_demo(folder, summary)
    if probe.exists():
        head = _read_json(probe)
        variant = str(head.get("variant", "id"))
        run = RunData(folder, "probe", ["base"], method_of={"base": "base"})
        independence = _load_probe(probe, run, variant, None)
        run.facts += [f"independence: {independence}"] if independence else []
        run.models += list(run.transitions[variant])
        run.method_of |= {m: m for m in run.trained}  # a lone probe: each trained model is its own method
        with _reading(probe):
            models = {m: str(p) for m, p in (head.get("models") or {}).items() if m in run.trained}
        found = {m: training_run(p, folder) for m, p in models.items()}
        _training_logs(run, {m: d for m, d in found.items() if d is not None})  # curves beside each model
        return run
    if (folder / "control.json").exists():  # `reweightlab control run --out DIR`: only the control section
        return RunData(folder, "control", [], facts=["control policies from offline data (control.json)"])
    if claims_alone:  # a study's folder with no results of its own: only the claims section
        return RunData(folder, "claims", [], facts=["a study's claims and verdicts (claims.json)"])
    raise ReportError(
        f"{folder} holds neither summary.json (a demo run), probe.json (a probe run), control.json "
        "(a control run) nor claims.json (a study)"
    )
