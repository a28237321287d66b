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

The comparisons of a trained model with the base live in ``probe.compare``; what is written of
both (probe.json, probe_prompts.jsonl) in ``probe.outputs``.
"""

from __future__ import annotations

import dataclasses
import math
import time
import typing
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from reweightlab.config import setting
from reweightlab.probe.evaluate import default_ks
from reweightlab.probe.regimes import (
    RegimeThresholds,
    classify,
    reached_likelihood,
    reached_sampling,
    singularity_kinds,
)
from reweightlab.probe.revision import RevisionProbe, revision_probe
from reweightlab.probe.sampling import SampledCounts, sample_counts
from reweightlab.rollout.search import SearchBudget, verifier_guided_search

PROBE_VERSION = 2
Estimator = Literal["sampling", "likelihood"]
PromptSplit = Literal["test", "train", "both"]
ESTIMATORS: tuple[str, ...] = typing.get_args(Estimator)
PROMPT_SPLITS: tuple[str, ...] = typing.get_args(PromptSplit)
MODEL_SEED_STRIDE = 7_919_993  # model i samples with seed + stride * i (the base is model 0)
REGIME_SEED_OFFSET = 104_729  # the base's regime samples: an independent stream of their own


class ProbeError(ValueError):
    """A probe request that cannot be carried out as asked (reported as one line, nothing written)."""


@dataclass(frozen=True)
class ProbeSettings:
    """What to probe and with which budgets; every threshold of the regimes is a named field.

    The probe command's flags, config-file keys and --help all come from these fields (reweightlab.config)."""

    task: str = setting("generalpoints", "a registered task name, or a .jsonl/.parquet data file (then --reward "
                                         "is needed)")
    reward: str | None = setting(
        None, "with a data file task: module:function, file.py:function or a built-in (exact_match, "
        "numeric_match[:TOL], regex[:PATTERN], math_verify)", metavar="SPEC",
    )
    reward_timeout: float = setting(30.0, "seconds a reward call may take", metavar="SECONDS")
    success_threshold: float = setting(1.0, "with a data file task: a sample succeeds when its reward >= this")
    chat_template: Literal["auto", "always"] = setting(
        "auto", "with a data file task: template conversations only (auto, TRL's convention) or "
        "prompt/completion strings too (always); see tasks.formatting",
    )
    variant: str = setting("id", "the task variant (GeneralPoints: the rule, id (J=Q=K=10) or ood (J=11 Q=12 K=13))")
    split: PromptSplit = setting(
        "test", "which prompts, as datasets and lm-eval mean a split: held-out (test), seen in training (train), "
        "or half of each (both: every model's pass@1 and each gain reported on the two halves apart, in "
        "probe.json's by_split)",
    )
    num_prompts: int = setting(100, "prompts probed (GeneralPoints test hands are distinct value multisets: at "
                                    "most 125 ID, 174 OOD)")
    n: int = setting(256, "samples per prompt (temperature 1); the first K of them give a trained model's regimes")
    ks: tuple[int, ...] = setting((), "pass@k at these k, e.g. 1,2,4,8 (default: powers of 2 up to n)", flag="--k",
                                  metavar="K1,K2,...")
    thresholds: RegimeThresholds = setting(RegimeThresholds(), "the regime classifier's thresholds")
    estimator: Estimator = setting(
        "sampling", "whose regimes split the gains: sampled successes in K samples (sampling), or p_known "
        "(likelihood: tasks that list their solutions)",
    )
    search: SearchBudget | None = setting(
        SearchBudget(), "the verifier-guided search on the prompts the K regime samples missed (without it "
        "nothing can be barrier)", flag="--no-search",
    )
    revision_attempts: int = setting(
        1, "revision episodes of up to R attempts (the task's feedback after each failed one): success at the "
        "first attempt and within the episode side by side, and a prompt revision reaches is barrier; 1 = off "
        "(needs a task with a feedback hook)", flag="--revision-attempts", metavar="R",
    )
    revision_episodes: int = setting(32, "revision episodes per prompt (with --revision-attempts above 1)",
                                     flag="--revision-episodes", metavar="E")
    beta: float = setting(1.0, "free-energy temperature of the headline figures (energy = -reward)")
    betas: tuple[float, ...] = setting(
        (0.1, 0.3, 3.0), "further temperatures of the free-energy sweep (each trained model's training kl_beta "
        "is added)", metavar="B1,B2,...",
    )
    max_new_tokens: int = setting(24, "longest completion sampled, in tokens (the probe command: the search's "
                                      "too, unless search.max_new_tokens is set)")
    seed: int = setting(0, "seed of the prompts, the samples and the bootstrap")
    keep_per_prompt: int = setting(16, "samples per prompt kept for the KL and free-energy estimates (the probe "
                                       "command cuts it to n)", flag="--keep")
    keep_samples: bool = setting(False, "write every sampled completion (text, reward, reason, sampler log-prob) "
                                        "to samples/<model>.jsonl")
    chunk_sequences: int = setting(8192, "sample at most this many sequences at once (memory bound for large n)",
                                   flag="--chunk")
    bootstrap: int = setting(1000, "bootstrap resamples of the prompts behind every interval")
    device: str = setting("auto", "where the models run: auto (cuda if there is one, else cpu), cpu, cuda or cuda:N")

    def __post_init__(self) -> None:  # 'auto' as train's model.device: the GPU when there is one
        if self.device == "auto":
            object.__setattr__(self, "device", "cuda" if torch.cuda.is_available() else "cpu")

    def resolved_ks(self) -> list[int]:
        return sorted(set(self.ks)) if self.ks else default_ks(self.n)

    def resolved_betas(self, extra: tuple[float, ...] = ()) -> list[float]:
        return sorted({float(self.beta), *map(float, self.betas), *map(float, extra)})

    def check(self) -> None:
        """ProbeError on settings that cannot work, before anything is loaded or sampled."""
        K = self.thresholds.budget_K
        if self.n >= 1 and self.n < K:
            raise ProbeError(f"n = {self.n} samples per prompt is below the regime budget K = {K}: a trained "
                             f"model's regimes come from its first K samples (raise --n or lower --budget-k)")
        self.check_figures()

    def check_figures(self) -> None:
        """The checks that hold whoever drew the samples (the sampling probe, or samples files, whose trained
        models' K is checked against the files by the caller): counts, k, betas, estimator, device, bootstrap."""
        if self.n < 1 or self.num_prompts < 1:
            raise ProbeError(f"--n and --num-prompts must be >= 1 (got n={self.n}, num_prompts={self.num_prompts})")
        ks = self.resolved_ks()
        if min(ks) < 1:
            raise ProbeError(f"every k must be >= 1, got {ks}")
        if max(ks) > self.n:
            raise ProbeError(f"n = {self.n} samples per prompt is smaller than the largest k = {max(ks)}: "
                             f"pass@k needs k <= n (raise --n or drop k > {self.n} from --k)")
        for b in (self.beta, *self.betas):
            if not (isinstance(b, int | float) and math.isfinite(b) and b > 0):
                raise ProbeError(f"every free-energy beta must be a finite number > 0, got {b!r}")
        if self.estimator not in ESTIMATORS:  # Python callers are not held to the Literal
            raise ProbeError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if not 1 <= self.keep_per_prompt <= self.n:
            raise ProbeError(f"keep_per_prompt must lie in [1, n={self.n}], got {self.keep_per_prompt}")
        if self.max_new_tokens < 1:
            raise ProbeError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.revision_attempts < 1 or self.revision_episodes < 1:
            raise ProbeError(f"--revision-attempts and --revision-episodes must be >= 1 (got "
                             f"{self.revision_attempts} and {self.revision_episodes})")
        if self.chunk_sequences < 1:
            raise ProbeError(f"--chunk must be >= 1 sequences sampled at once, got {self.chunk_sequences}")
        from reweightlab.config import ConfigError, check_device

        try:
            check_device("device", self.device)
        except ConfigError as exc:
            raise ProbeError(str(exc)) from None
        if self.bootstrap < 100:
            raise ProbeError(f"bootstrap must be >= 100 resamples (a 95% interval from fewer is noise), "
                             f"got {self.bootstrap}")

    def to_dict(self) -> dict:
        """probe.json's ``settings``: these fields only (a subclass's, such as the command's models, not)."""
        own = {f.name for f in dataclasses.fields(ProbeSettings)}
        d = {k: v for k, v in asdict(self).items() if k in own}
        d["ks"] = self.resolved_ks()
        d["thresholds"]["p_budget"] = self.thresholds.p_budget
        return d


# ---- one model alone: tensors for probe.compare, summaries for probe.json ----


@dataclass(frozen=True)
class SearchSummary:
    """The verifier-guided search on one model: on how many prompts it ran, on how many it found a success."""

    enabled: bool
    budget: SearchBudget | None
    prompts: int
    """Prompts the K regime samples did not reach (the search's to-do list, searched or not)."""
    found: int
    forward_tokens: int
    seconds: float


@dataclass(frozen=True)
class StageSeconds:
    """Wall time of one model's probe, by stage."""

    sampling: float
    likelihood: float
    search: float


@dataclass(frozen=True)
class EstimatorRegimes:
    """One estimator's verdict on every prompt (P) of one model."""

    reached_P: torch.Tensor
    """Reached within the budget (bool): a success in the K samples, or (likelihood) p_known >= p_budget."""
    regime_P: list[str]
    kind_P: list[str | None]
    """The singularity kind (improbable / unreachable / unknown); None where the regime is not singularity."""


@dataclass(frozen=True)
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
    search: SearchSummary
    revision: RevisionProbe | None
    """Revision episodes (``--revision-attempts`` above 1), else None."""
    sampling: EstimatorRegimes
    likelihood: EstimatorRegimes | None
    """None where the task cannot list its solutions (no p_known)."""
    seconds: StageSeconds

    @property
    def estimators(self) -> dict[str, EstimatorRegimes]:
        """The estimators this model has regimes under, sampling first."""
        out = {"sampling": self.sampling}
        return out if self.likelihood is None else out | {"likelihood": self.likelihood}

    def under(self, estimator: str) -> EstimatorRegimes:
        return self.estimators[estimator]

    def regimes_of(self, estimator: str) -> list[str]:
        return self.under(estimator).regime_P


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


def _regime_samples(model, tokenizer, task, problems, settings: ProbeSettings, s: SampledCounts, *, label: str,
                    index: int, seed: int, progress: bool, recorder) -> tuple[torch.Tensor, list, int]:
    """(c_K_P, solutions_K, regime seed): the base's from K samples of their own seed, a trained model's
    from the first K of its n samples (module docstring: independence)."""
    K = settings.thresholds.budget_K
    if index != 0:
        return s.c_first(K), s.solutions(first=K), seed
    regime_seed = seed + REGIME_SEED_OFFSET
    rec = recorder(f"{label}.regime") if recorder else None
    r = _sample(model, tokenizer, task, problems, settings, n=K, keep=0, seed=regime_seed,
                desc=f"sampling {label} (regime set)", progress=progress, record=rec)
    return r.c_P, r.solutions(), regime_seed


def _search(model, tokenizer, task, problems, settings: ProbeSettings, c_K_P: torch.Tensor,
            progress: bool) -> tuple[torch.Tensor, SearchSummary]:
    """The search on the prompts the regime samples did not reach: (found_P, its summary)."""
    t0 = time.perf_counter()
    todo = torch.nonzero(c_K_P == 0).flatten()
    found_P = torch.zeros(len(problems), dtype=torch.bool)
    found = forward_tokens = 0
    if settings.search is not None and todo.numel():
        res = verifier_guided_search(model, tokenizer, task, [problems[i] for i in todo.tolist()],
                                     budget=settings.search, device=settings.device, progress=progress)
        found_P[todo] = res.found_P.bool()
        found, forward_tokens = int(res.found_P.sum()), int(res.forward_tokens)
    summary = SearchSummary(enabled=settings.search is not None, budget=settings.search, prompts=int(todo.numel()),
                            found=found, forward_tokens=forward_tokens, seconds=round(time.perf_counter() - t0, 2))
    return found_P, summary


def classify_regimes(c_K_P, p_known_P, max_logp_P, found_P, settings: ProbeSettings):
    """(sampling, likelihood) regimes; the likelihood estimator's is None without p_known. ``found_P``:
    the search's or revision's success on the prompts the K samples missed."""
    th, K = settings.thresholds, settings.thresholds.budget_K
    extra_information = settings.search is not None or settings.revision_attempts > 1
    found = found_P if extra_information else None  # neither: nothing can be shown to be barrier
    reached_P = reached_sampling(c_K_P)
    regime_P = classify(c_K_P.double() / K, reached_P, thresholds=th, search_success_P=found)
    sampling = EstimatorRegimes(reached_P, regime_P, singularity_kinds(regime_P, max_logp_P, th))
    if p_known_P is None:
        return sampling, None
    reached_P = reached_likelihood(p_known_P, c_K_P, th)
    regime_P = classify(p_known_P, reached_P, thresholds=th, search_success_P=found)
    return sampling, EstimatorRegimes(reached_P, regime_P, singularity_kinds(regime_P, max_logp_P, th))


def probe_model(model, tokenizer, task, problems, settings: ProbeSettings, *, label: str, index: int,
                progress: bool, recorder=None) -> ModelProbe:
    """Sample, score, search and classify one model (``index`` 0 is the base: it alone gets a separate
    regime sample set). ``recorder(label)`` gives the per-chunk ``record`` callback of --keep-samples."""
    t0 = time.perf_counter()
    seed = settings.seed + MODEL_SEED_STRIDE * index
    rec = recorder(label) if recorder else None
    listed = None if task.solutions(problems[0]) is None else [set(task.solutions(p)) for p in problems]
    s = _sample(model, tokenizer, task, problems, settings, n=settings.n, keep=settings.keep_per_prompt, seed=seed,
                desc=f"sampling {label}", progress=progress, record=rec, listed=listed)
    c_K_P, solutions_K, regime_seed = _regime_samples(model, tokenizer, task, problems, settings, s, label=label,
                                                      index=index, seed=seed, progress=progress, recorder=recorder)
    t1 = time.perf_counter()
    p_known_P, max_logp_P = _known_stats(model, tokenizer, task, problems, settings.device)
    unlisted_P = None if s.unlisted_PN is None else s.unlisted_PN.double().mean(1)
    t2 = time.perf_counter()
    found_P, search = _search(model, tokenizer, task, problems, settings, c_K_P, progress)
    revision = None
    if settings.revision_attempts > 1:
        revision = revision_probe(model, tokenizer, task, problems, attempts=settings.revision_attempts,
                                  episodes=settings.revision_episodes, max_new_tokens=settings.max_new_tokens,
                                  seed=seed, progress=progress)
    reached_by_extra_P = found_P if revision is None else found_P | (revision.later_success_P & (c_K_P == 0))
    sampling, likelihood = classify_regimes(c_K_P, p_known_P, max_logp_P, reached_by_extra_P, settings)
    return ModelProbe(
        label=label, samples=s, c_K_P=c_K_P, solutions_K=solutions_K, regime_seed=regime_seed, p_known_P=p_known_P,
        max_logp_P=max_logp_P, unlisted_success_P=unlisted_P, search_found_P=found_P, search=search,
        revision=revision, sampling=sampling, likelihood=likelihood,
        seconds=StageSeconds(sampling=round(t1 - t0, 2), likelihood=round(t2 - t1, 2), search=search.seconds),
    )
