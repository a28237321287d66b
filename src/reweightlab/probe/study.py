"""`reweightlab probe`, per model: what one model does on one prompt set, with the evidence behind it.

Per model (base included): ``n`` samples per prompt (pass@k, gains, diversity; the first ``keep``
of each prompt kept as sequences for the KL and the free energy); where the task enumerates its
solutions, their likelihood (p_known, the best solution's log-prob) in one teacher-forced pass; the
verifier-guided search on the prompts that the regime samples did not reach; the regime of every
prompt under both estimators of p(x).

Independence (a regime is a selection; a gain measured on the samples that selected it regresses to
the mean): the base's regimes come from a separately seeded set of K samples, never from the n
samples that measure its pass@1; a trained model's regimes come from the first K of its own n
samples (nothing is selected on them and then measured on them: its gains are split by the *base's*
regime). Every model samples with its own seed, so two models never share random numbers.

The comparisons of a trained model with the base live in ``probe.compare``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from reweightlab.files import write_text_atomic
from reweightlab.probe.evaluate import default_ks
from reweightlab.probe.passk_stats import bootstrap_passk
from reweightlab.probe.regimes import (
    REGIMES,
    SINGULARITY_KINDS,
    RegimeThresholds,
    agreement,
    classify,
    reached_likelihood,
    reached_sampling,
    singularity_kinds,
)
from reweightlab.probe.sampling import SampledCounts, sample_counts
from reweightlab.probe.search import SearchBudget, verifier_guided_search
from reweightlab.probe.support import diversity_P

PROBE_VERSION = 2
ESTIMATORS = ("sampling", "likelihood")
MODEL_SEED_STRIDE = 7_919_993  # model i samples with seed + stride * i (the base is model 0)
REGIME_SEED_OFFSET = 104_729  # the base's regime samples: an independent stream of their own


class ProbeError(ValueError):
    """A probe request that cannot be carried out as asked (reported as one line, nothing written)."""


@dataclass(frozen=True)
class ProbeSettings:
    """What to probe and with which budgets; every threshold of the regimes is a named field."""

    task: str = "generalpoints"
    """A registered task name, or a .jsonl/.parquet data file (then ``reward`` is needed)."""
    reward: str | None = None
    """A data file task's reward function: module:function, file.py:function or a built-in."""
    reward_timeout: float = 30.0
    success_threshold: float = 1.0
    """A data file task's success: reward >= this."""
    chat_template: str = "auto"
    """A data file task's rendering: 'auto' (conversations only) or 'always' (strings too); tasks.formatting."""
    variant: str = "id"
    """Task variant: for GeneralPoints the rule, id (J=Q=K=10) or ood (J=11 Q=12 K=13)."""
    prompt_split: str = "test"
    """Which prompts: the held-out test split (default), the training split (seen in training), or both
    (half each, reported apart in probe.json's by_split)."""
    num_prompts: int = 100
    n: int = 256
    """Samples per prompt (temperature 1); the first K of them give a trained model's regimes."""
    ks: tuple[int, ...] = ()
    """pass@k at these k (default: powers of two up to n)."""
    thresholds: RegimeThresholds = field(default_factory=RegimeThresholds)
    estimator: str = "sampling"
    """Whose regimes split the gains: 'sampling' (successes in K samples) or 'likelihood' (p_known)."""
    search: SearchBudget | None = field(default_factory=SearchBudget)
    """Budget of the verifier-guided search; None turns the search off (then nothing can be barrier)."""
    beta: float = 1.0
    """The free-energy temperature of the headline figures (energy = -reward)."""
    betas: tuple[float, ...] = (0.1, 0.3, 3.0)
    """Further temperatures of the free-energy sweep (each trained model's training beta is added)."""
    max_new_tokens: int = 24
    seed: int = 0
    keep_per_prompt: int = 16
    """Samples per prompt kept as sequences for the KL and free-energy estimates."""
    keep_samples: bool = False
    """Write every sampled completion (text, reward, reason, sampler log-prob) to samples/<model>.jsonl."""
    chunk_sequences: int = 8192
    """At most this many sequences are sampled at once (memory bound for large n)."""
    bootstrap: int = 1000
    """Bootstrap resamples of the prompts behind every interval."""
    device: str = "cpu"

    def resolved_ks(self) -> list[int]:
        return sorted(set(self.ks)) if self.ks else default_ks(self.n)

    def resolved_betas(self, extra: tuple[float, ...] = ()) -> list[float]:
        return sorted({float(self.beta), *map(float, self.betas), *map(float, extra)})

    def check(self) -> None:
        """ProbeError on settings that cannot work, before anything is loaded or sampled."""
        if self.n < 1 or self.num_prompts < 1:
            raise ProbeError(f"--n and --num-prompts must be >= 1 (got n={self.n}, num_prompts={self.num_prompts})")
        K = self.thresholds.budget_K
        if self.n < K:
            raise ProbeError(f"n = {self.n} samples per prompt is below the regime budget K = {K}: a trained "
                             f"model's regimes come from its first K samples (raise --n or lower --budget-k)")
        ks = self.resolved_ks()
        if min(ks) < 1:
            raise ProbeError(f"every k must be >= 1, got {ks}")
        if max(ks) > self.n:
            raise ProbeError(f"n = {self.n} samples per prompt is smaller than the largest k = {max(ks)}: "
                             f"pass@k needs k <= n (raise --n or drop k > {self.n} from --k)")
        for b in (self.beta, *self.betas):
            if not (isinstance(b, int | float) and math.isfinite(b) and b > 0):
                raise ProbeError(f"every free-energy beta must be a finite number > 0, got {b!r}")
        if self.estimator not in ESTIMATORS:
            raise ProbeError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if not 1 <= self.keep_per_prompt <= self.n:
            raise ProbeError(f"keep_per_prompt must lie in [1, n={self.n}], got {self.keep_per_prompt}")
        if self.max_new_tokens < 1:
            raise ProbeError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.bootstrap < 100:
            raise ProbeError(f"bootstrap must be >= 100 resamples (a 95% interval from fewer is noise), "
                             f"got {self.bootstrap}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ks"] = self.resolved_ks()
        d["thresholds"]["p_budget"] = self.thresholds.p_budget
        return d


@dataclass
class ModelProbe:
    """Everything measured on one model alone (tensors, for the comparisons in ``probe.compare``)."""

    label: str
    samples: SampledCounts
    """The n samples: pass@k, pass@1 gains, diversity; the kept sequences."""
    c_K_P: torch.Tensor
    """Successes among the K regime samples (the base's own seeded set; a trained model's first K)."""
    solutions_K: list
    """Per prompt, the distinct solutions reached in the K regime samples (Counters)."""
    regime_seed: int
    p_known_P: torch.Tensor | None
    max_logp_P: torch.Tensor | None
    unlisted_success_P: torch.Tensor | None
    """Share of the n samples that succeed other than as a listed solution + EOS (what p_known misses)."""
    search_found_P: torch.Tensor
    search: dict
    regimes: dict[str, list[str]]
    kinds: dict[str, list]
    reached: dict[str, torch.Tensor]
    seconds: dict

    def regimes_of(self, estimator: str) -> list[str]:
        return self.regimes[estimator]


def _known_stats(model, tokenizer, task, problems, device):
    """(p_known_P, max_logp_P) or (None, None) when the task cannot enumerate its solutions."""
    from reweightlab.probe.likelihood import known_solution_stats

    if task.solutions(problems[0]) is None:
        return None, None
    stats = known_solution_stats(model, tokenizer, task, problems, device=device)
    return stats.p_known_P, stats.max_logp_P


def _sample(model, tokenizer, task, problems, settings: ProbeSettings, *, n: int, keep: int, seed: int,
            desc: str, progress: bool, record, listed=None) -> SampledCounts:
    return sample_counts(
        model, tokenizer, task, problems, n=n, keep_per_prompt=keep, max_new_tokens=settings.max_new_tokens,
        seed=seed, chunk_sequences=settings.chunk_sequences, progress=progress, desc=desc, record=record,
        listed=listed,
    )


def probe_model(model, tokenizer, task, problems, settings: ProbeSettings, *, label: str, index: int,
                progress: bool, recorder=None) -> ModelProbe:
    """Sample, score, search and classify one model (``index`` 0 is the base: it alone gets a separate
    regime sample set). ``recorder(label)`` gives the per-chunk ``record`` callback of --keep-samples."""
    th = settings.thresholds
    K = th.budget_K
    t0 = time.perf_counter()
    seed = settings.seed + MODEL_SEED_STRIDE * index
    rec = recorder(label) if recorder else None
    listed = None if task.solutions(problems[0]) is None else [set(task.solutions(p)) for p in problems]
    s = _sample(model, tokenizer, task, problems, settings, n=settings.n, keep=settings.keep_per_prompt, seed=seed,
                desc=f"sampling {label}", progress=progress, record=rec, listed=listed)
    if index == 0:
        regime_seed = seed + REGIME_SEED_OFFSET
        rec = recorder(f"{label}.regime") if recorder else None
        r = _sample(model, tokenizer, task, problems, settings, n=K, keep=0, seed=regime_seed,
                    desc=f"sampling {label} (regime set)", progress=progress, record=rec)
        c_K_P, solutions_K = r.c_P, r.solutions()
    else:
        regime_seed = seed
        c_K_P, solutions_K = s.c_first(K), s.solutions(first=K)
    t1 = time.perf_counter()
    p_known_P, max_logp_P = _known_stats(model, tokenizer, task, problems, settings.device)
    unlisted_P = None if s.unlisted_PN is None else s.unlisted_PN.double().mean(1)
    t2 = time.perf_counter()
    todo = torch.nonzero(c_K_P == 0).flatten()  # not reached by the regime samples: search for a success
    found_P = torch.zeros(len(problems), dtype=torch.bool)
    search = {"enabled": settings.search is not None, "budget": settings.search.to_dict() if settings.search else None,
              "prompts": int(todo.numel()), "found": 0, "forward_tokens": 0}
    if settings.search is not None and todo.numel():
        res = verifier_guided_search(model, tokenizer, task, [problems[i] for i in todo.tolist()],
                                     budget=settings.search, device=settings.device, progress=progress)
        found_P[todo] = res.found_P.bool()
        search.update(found=int(res.found_P.sum()), forward_tokens=int(res.forward_tokens))
    search["seconds"] = round(time.perf_counter() - t2, 2)
    found = found_P if settings.search is not None else None
    reached = {"sampling": reached_sampling(c_K_P)}
    regimes = {"sampling": classify(c_K_P.double() / K, reached["sampling"], thresholds=th, search_success_P=found)}
    if p_known_P is not None:
        reached["likelihood"] = reached_likelihood(p_known_P, c_K_P, th)
        regimes["likelihood"] = classify(p_known_P, reached["likelihood"], thresholds=th, search_success_P=found)
    kinds = {e: singularity_kinds(r, max_logp_P, th) for e, r in regimes.items()}
    return ModelProbe(
        label=label, samples=s, c_K_P=c_K_P, solutions_K=solutions_K, regime_seed=regime_seed,
        p_known_P=p_known_P,
        max_logp_P=max_logp_P, unlisted_success_P=unlisted_P, search_found_P=found_P, search=search,
        regimes=regimes, kinds=kinds, reached=reached,
        seconds={"sampling": round(t1 - t0, 2), "likelihood": round(t2 - t1, 2), "search": search["seconds"]},
    )


def _counts(labels: list, names) -> dict[str, int]:
    return {name: sum(x == name for x in labels) for name in names}


def model_summary(m: ModelProbe, settings: ProbeSettings) -> dict:
    """One model's figures: pass@k with intervals over prompts, regimes under both estimators (with the
    singularity kinds), diversity, the search, estimator agreement, times."""
    s = m.samples
    ci = bootstrap_passk(s.n_P, s.c_P, settings.resolved_ks(), num_resamples=settings.bootstrap, seed=settings.seed)
    distinct_P, entropy_P = diversity_P(s.solutions())
    out = {
        "pass_at_k": {str(k): est for k, (est, _, _) in ci.items()},
        "pass_at_k_ci95": {str(k): [lo, hi] for k, (_, lo, hi) in ci.items()},
        "mean_reward": float(s.rewards_PN.double().mean()),
        "regimes": _counts(m.regimes_of(settings.estimator), REGIMES),
        "regimes_by_estimator": {e: _counts(r, REGIMES) for e, r in m.regimes.items()},
        "singularity_kinds": _counts(m.kinds[settings.estimator], SINGULARITY_KINDS),
        "regime_samples": {"K": settings.thresholds.budget_K, "seed": m.regime_seed,
                           "source": "own seeded set" if m.label == "base" else "first K of the n samples"},
        "diversity": {"distinct_solutions_per_prompt": float(distinct_P.mean()),
                      "solution_entropy_per_prompt": float(entropy_P.mean())},
        "search": m.search,
        "seconds": m.seconds,
        "seed": s.seed,
        "sample_tokens_per_s": round(s.completion_tokens / max(s.seconds, 1e-9)),
    }
    if m.p_known_P is not None:
        agree = agreement(s.p_P, s.n_P, m.p_known_P)
        same = sum(a == b for a, b in zip(m.regimes["sampling"], m.regimes["likelihood"], strict=True))
        out["p_known_mean"] = float(m.p_known_P.mean())
        out["unlisted_success_mean"] = float(m.unlisted_success_P.mean())
        out["estimator_agreement"] = agree | {"same_regime": same / len(m.regimes["sampling"])}
    return out


def prompt_rows(problems, probes: dict[str, ModelProbe], gaps: dict[str, torch.Tensor], estimator: str) -> list[dict]:
    """One JSON-ready row per prompt: per model n, c, the K regime samples' successes, the regimes,
    p_known, the search's verdict, diversity, and the free-energy gap at the headline beta."""
    rows = []
    div = {label: diversity_P(m.samples.solutions()) for label, m in probes.items()}
    for i, prob in enumerate(problems):
        models = {}
        for label, m in probes.items():
            s = m.samples
            row = {"n": int(s.n_P[i]), "c": int(s.c_P[i]), "c_regime": int(m.c_K_P[i]),
                   "regime": m.regimes_of(estimator)[i], "regime_sampling": m.regimes["sampling"][i],
                   "singularity_kind": m.kinds[estimator][i], "search_found": bool(m.search_found_P[i]),
                   "distinct_solutions": int(div[label][0][i]), "solution_entropy": float(div[label][1][i])}
            if m.p_known_P is not None:
                logp = float(m.max_logp_P[i])
                row |= {"p_known": float(m.p_known_P[i]), "regime_likelihood": m.regimes["likelihood"][i],
                        "max_known_logp": logp if math.isfinite(logp) else None}
            if label in gaps:
                row["free_energy_gap"] = float(gaps[label][i])
            models[label] = row
        rows.append({"id": prob.id, "prompt": prob.prompt, "split": prob.split, "models": models})
    return rows


class SampleWriter:
    """--keep-samples: every sample of every model as JSONL, written to ``<name>.jsonl.part`` as it comes
    and renamed to ``<name>.jsonl`` only when the probe finishes (no half-written file under the final name)."""

    def __init__(self, folder: Path, problems) -> None:
        self.folder, self.ids, self.files = folder, [p.id for p in problems], {}
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str):
        fh = self.files[name] = open(self.folder / f"{name}.jsonl.part", "w", encoding="utf-8")  # noqa: SIM115
        counter = [0] * len(self.ids)

        def record(prompt_N, text_N, reward_N, reason_N, logp_N) -> None:
            for p, text, reward, reason, logp in zip(prompt_N, text_N, reward_N, reason_N, logp_N, strict=True):
                fh.write(json.dumps({"prompt_id": self.ids[p], "sample": counter[p], "text": text, "reward": reward,
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


def write_outputs(out_dir: Path, summary: dict, rows: list[dict]) -> None:
    """probe_prompts.jsonl first, probe.json last: a folder with probe.json holds a finished probe."""
    write_text_atomic(out_dir / "probe_prompts.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    write_text_atomic(out_dir / "probe.json", json.dumps(summary, indent=2))
