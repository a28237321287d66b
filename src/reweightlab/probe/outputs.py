"""What `reweightlab probe` writes: probe.json's summary and per-model figures, probe_prompts.jsonl's rows,
and with --keep-samples every sample.

Each is a small frozen dataclass whose fields are the JSON keys, in the files' order; ``as_json``
turns one into the plain dicts that are written. The figures themselves (an interval is
``{"value", "ci95"}``, a count table is keyed by regime name) stay plain JSON values.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from reweightlab.files import write_text_atomic
from reweightlab.probe.intervals import Resamples
from reweightlab.probe.passk_stats import bootstrap_passk
from reweightlab.probe.regimes import REGIMES, SINGULARITY_KINDS, agreement
from reweightlab.probe.revision import revision_figures
from reweightlab.probe.study import ModelProbe, ProbeSettings, SearchSummary, StageSeconds
from reweightlab.probe.support import diversity_P


def as_json(obj):
    """A typed result as the probe's JSON files write it: its fields in order, nested results converted.

    probe.json's shape predates these classes, so two field markers keep it: ``_omitted()`` fields are
    left out while None (a key that only some models have), ``_inline()`` fields write their own keys in
    their place (a group of keys that exists only where the task lists its solutions). Lists and plain
    values are written as they are."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value, how = getattr(obj, f.name), f.metadata.get("json")
            if value is None and how in ("omitted", "inline"):
                continue
            if how == "inline":
                out.update(as_json(value))
            else:
                out[f.name] = as_json(value)
        return out
    if isinstance(obj, dict):
        return {k: as_json(v) for k, v in obj.items()}
    return obj


def _omitted():
    return field(default=None, metadata={"json": "omitted"})


def _inline():
    return field(default=None, metadata={"json": "inline"})


# ---- one model's figures (probe.json's per_model) and the per-prompt rows (probe_prompts.jsonl) ----


@dataclass(frozen=True)
class RegimeSampleSource:
    """Which samples made a model's regimes."""

    K: int
    seed: int
    source: str


@dataclass(frozen=True)
class Diversity:
    distinct_solutions_per_prompt: float
    solution_entropy_per_prompt: float


@dataclass(frozen=True)
class KnownFigures:
    """Where the task lists its solutions: the likelihood estimator's means, and its agreement with sampling."""

    p_known_mean: float
    unlisted_success_mean: float
    estimator_agreement: dict[str, float]


@dataclass(frozen=True)
class ModelFigures:
    """One model's figures (probe.json ``per_model``); counts are keyed by regime or kind name."""

    pass_at_k: dict[str, float]
    pass_at_k_ci95: dict[str, list]
    mean_reward: float
    regimes: dict[str, int]
    regimes_by_estimator: dict[str, dict[str, int]]
    singularity_kinds: dict[str, int]
    regime_samples: RegimeSampleSource
    diversity: Diversity
    search: SearchSummary
    seconds: StageSeconds
    seed: int
    sample_tokens_per_s: int
    failure_kinds: dict[str, float]
    """Share of all n samples per prompt that failed each way (the task's ``failure_kind``)."""
    likelihood: KnownFigures | None = _inline()
    revision: dict | None = _omitted()
    """Revision episodes (``--revision-attempts``): success at the first attempt and within the episode
    (``probe.revision.revision_figures``)."""
    free_energy: dict | None = _omitted()
    """The base alone: its gap to the best reweighting of itself, per beta (``probe.compare.gap_figures``)."""
    sampler_nll: dict | None = _omitted()
    """A samples probe with log-probs: mean -log pi(y | x) of the model's own samples per prompt (an estimate
    of its sequence entropy), with an interval over prompts."""


def _counts(labels: list, names) -> dict[str, int]:
    return {name: sum(x == name for x in labels) for name in names}


def _known_figures(m: ModelProbe) -> KnownFigures | None:
    if m.p_known_P is None:
        return None
    s = m.samples
    agree = agreement(s.p_P, s.n_P, m.p_known_P)
    regimes_s, regimes_l = m.sampling.regime_P, m.likelihood.regime_P
    same = sum(a == b for a, b in zip(regimes_s, regimes_l, strict=True))
    return KnownFigures(p_known_mean=float(m.p_known_P.mean()),
                        unlisted_success_mean=float(m.unlisted_success_P.mean()),
                        estimator_agreement=agree | {"same_regime": same / len(regimes_s)})


def model_summary(m: ModelProbe, settings: ProbeSettings) -> ModelFigures:
    """One model's figures: pass@k with intervals over prompts, regimes under both estimators (with the
    singularity kinds), diversity, the search, revision, estimator agreement, times."""
    s = m.samples
    revision = None
    if m.revision is not None:
        rs = Resamples(len(m.c_K_P), settings.bootstrap, seed=settings.seed)
        revision = revision_figures(m.revision, rs, m.c_K_P == 0)
    ci = bootstrap_passk(s.n_P, s.c_P, settings.resolved_ks(), num_resamples=settings.bootstrap, seed=settings.seed)
    distinct_P, entropy_P = diversity_P(s.solutions())
    return ModelFigures(
        pass_at_k={str(k): est for k, (est, _, _) in ci.items()},
        pass_at_k_ci95={str(k): [lo, hi] for k, (_, lo, hi) in ci.items()},
        mean_reward=float(s.rewards_PN.double().mean()),
        regimes=_counts(m.regimes_of(settings.estimator), REGIMES),
        regimes_by_estimator={e: _counts(r.regime_P, REGIMES) for e, r in m.estimators.items()},
        singularity_kinds=_counts(m.under(settings.estimator).kind_P, SINGULARITY_KINDS),
        regime_samples=RegimeSampleSource(
            K=settings.thresholds.budget_K, seed=m.regime_seed,
            source="own seeded set" if m.label == "base" else "first K of the n samples"),
        diversity=Diversity(float(distinct_P.mean()), float(entropy_P.mean())),
        search=m.search, seconds=m.seconds, seed=s.seed,
        sample_tokens_per_s=round(s.completion_tokens / max(s.seconds, 1e-9)),
        failure_kinds={k: v / max(1, int(s.n_P.sum())) for k, v in s.failure_kinds.items()},
        likelihood=_known_figures(m), revision=revision,
    )


@dataclass(frozen=True)
class KnownPromptFigures:
    """One prompt, one model, where the task lists its solutions."""

    p_known: float
    regime_likelihood: str
    max_known_logp: float | None
    """The best listed solution's log-prob; None where it is -inf (JSON has no infinity)."""


@dataclass(frozen=True)
class ModelPromptRow:
    """One model on one prompt (probe_prompts.jsonl ``models[label]``)."""

    n: int
    c: int
    c_regime: int
    regime: str
    regime_sampling: str
    singularity_kind: str | None
    search_found: bool
    distinct_solutions: int
    solution_entropy: float
    known: KnownPromptFigures | None = _inline()
    revision_first_attempt: float | None = _omitted()
    revision_within_episode: float | None = _omitted()
    free_energy_gap: float | None = _omitted()


@dataclass(frozen=True)
class PromptRow:
    """One line of probe_prompts.jsonl."""

    id: str
    prompt: str
    split: str
    models: dict[str, ModelPromptRow]


def _model_row(m: ModelProbe, i: int, div: tuple, estimator: str, gap_P) -> ModelPromptRow:
    s, known = m.samples, None
    if m.p_known_P is not None:
        logp = float(m.max_logp_P[i])
        known = KnownPromptFigures(p_known=float(m.p_known_P[i]), regime_likelihood=m.likelihood.regime_P[i],
                                   max_known_logp=logp if math.isfinite(logp) else None)
    return ModelPromptRow(
        n=int(s.n_P[i]), c=int(s.c_P[i]), c_regime=int(m.c_K_P[i]), regime=m.regimes_of(estimator)[i],
        regime_sampling=m.sampling.regime_P[i], singularity_kind=m.under(estimator).kind_P[i],
        search_found=bool(m.search_found_P[i]), distinct_solutions=int(div[0][i]), solution_entropy=float(div[1][i]),
        known=known, free_energy_gap=None if gap_P is None else float(gap_P[i]),
        revision_first_attempt=None if m.revision is None else float(m.revision.first_P[i]),
        revision_within_episode=None if m.revision is None else float(m.revision.within_P[i]),
    )


def prompt_rows(problems, probes: dict[str, ModelProbe], gaps: dict[str, torch.Tensor],
                estimator: str) -> list[PromptRow]:
    """One row per prompt: per model n, c, the K regime samples' successes, the regimes, p_known, the
    search's verdict, diversity, and the free-energy gap at the headline beta."""
    div = {label: diversity_P(m.samples.solutions()) for label, m in probes.items()}
    return [PromptRow(id=prob.id, prompt=prob.prompt, split=prob.split,
                      models={label: _model_row(m, i, div[label], estimator, gaps.get(label))
                              for label, m in probes.items()})
            for i, prob in enumerate(problems)]


class SampleWriter:
    """--keep-samples: every sample of every model as JSONL, written to ``<name>.jsonl.part`` as it comes
    and renamed to ``<name>.jsonl`` only when the probe finishes (no half-written file under the final name)."""

    def __init__(self, folder: Path, problems) -> None:
        self.folder, self.ids, self.files = folder, [p.id for p in problems], {}
        self.prompts = [p.prompt for p in problems]
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str):
        fh = self.files[name] = open(self.folder / f"{name}.jsonl.part", "w", encoding="utf-8")  # noqa: SIM115
        counter = [0] * len(self.ids)

        def record(prompt_N, text_N, reward_N, success_N, reason_N, logp_N) -> None:
            for p, text, reward, success, reason, logp in zip(prompt_N, text_N, reward_N, success_N, reason_N, logp_N,
                                                              strict=True):
                fh.write(json.dumps({"prompt_id": self.ids[p], "prompt": self.prompts[p], "sample": counter[p],
                                     "text": text, "reward": reward, "success": success,
                                     "reason": reason, "logp": logp}) + "\n")
                counter[p] += 1

        return record

    def finish(self) -> list[Path]:
        out = []
        for name, fh in self.files.items():
            fh.close()
            (self.folder / f"{name}.jsonl.part").replace(self.folder / f"{name}.jsonl")
            out.append(self.folder / f"{name}.jsonl")
        return out

    def abort(self) -> None:
        for name, fh in self.files.items():
            fh.close()
            (self.folder / f"{name}.jsonl.part").unlink(missing_ok=True)


# ---- the whole probe (probe.json) ----


@dataclass(frozen=True)
class SplitFigures:
    """With seen and held-out prompts mixed, one part apart (probe.json ``by_split``): every model's pass@1
    and each trained model's gain split (``probe.compare.gain_split``), intervals over this part's prompts."""

    prompts: int
    seen_in_training: bool
    pass1: dict[str, dict]
    vs_base: dict[str, dict]


@dataclass(frozen=True)
class ProbeSummary:
    """probe.json: the settings, which samples made which figure, every model alone and each against the base."""

    version: int
    task: str
    variant: str
    split: str  # the prompts: test, train or both
    prompts_seen_in_training: bool | str
    num_prompts: int
    estimator: str
    independence: str
    betas: list[float]
    reward_classes: list[float]
    settings: dict
    models: dict[str, str]
    per_model: dict[str, ModelFigures]
    vs_base: dict
    """Per trained model, its ``probe.compare.Comparison`` with the base."""
    by_split: dict[str, SplitFigures] | None
    seconds: float | None = _omitted()
    samples_files: list[str] | None = _omitted()
    from_samples: dict | None = _omitted()
    """A probe of samples files (``probe.from_samples``): the files, how they were scored, what was not measured."""


def write_outputs(out_dir: Path, summary: ProbeSummary, rows: list[PromptRow]) -> None:
    """probe_prompts.jsonl first, probe.json last: a folder with probe.json holds a finished probe."""
    write_text_atomic(out_dir / "probe_prompts.jsonl", "".join(json.dumps(as_json(r)) + "\n" for r in rows))
    write_text_atomic(out_dir / "probe.json", json.dumps(as_json(summary), indent=2))
