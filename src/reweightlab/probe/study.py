"""`reweightlab probe`: the whole of SPEC 3 for one base model, several trained models and one prompt set.

Per model (base included): n samples per prompt (pass@k, per-prompt (n, c), bootstrap intervals);
where the task enumerates its solutions, their likelihood (p_known and the best solution's log-prob)
in one teacher-forced pass; the verifier-guided search on the prompts that sampling did not reach;
the regime of every prompt under both estimators of p(x).
Per trained model against the base: the crossover k*, the regime transitions, the pass@1 gain split
into elicitation and creation, support shrinkage, coverage, the exact per-token KL to the base on its
own samples (k1 and k3 beside it), the base's log-likelihood of its successes, and the free-energy gap.

Everything a bad input can break (task, models, tokenizers, settings, output folder) is checked
before the first sample is drawn.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from reweightlab.math.freeenergy import free_energy_from_samples, optimal_free_energy_from_samples
from reweightlab.probe.distance import base_loglik_of_successes, distance_and_base_logp
from reweightlab.probe.elicitation import compare_to_base
from reweightlab.probe.evaluate import default_ks
from reweightlab.probe.passk_stats import bootstrap_passk, crossover_k
from reweightlab.probe.regimes import REGIMES, RegimeThresholds, classify
from reweightlab.probe.sampling import sample_counts
from reweightlab.probe.search import SearchBudget, verifier_guided_search
from reweightlab.train.batching import microbatches
from reweightlab.train.checkpoint import write_text_atomic
from reweightlab.train.step import teacher_forced_logp

PROBE_VERSION = 1


class ProbeError(ValueError):
    """A probe request that cannot be carried out as asked (reported as one line, nothing written)."""


@dataclass(frozen=True)
class ProbeSettings:
    """What to probe and with which budgets; every threshold of SPEC 3.2 is a named field."""

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
    """Which prompts: the held-out test split (default) or the training split."""
    num_prompts: int = 128
    n: int = 256
    """Samples per prompt (temperature 1)."""
    ks: tuple[int, ...] = ()
    """pass@k at these k (default: powers of two up to n)."""
    thresholds: RegimeThresholds = field(default_factory=RegimeThresholds)
    search: SearchBudget | None = field(default_factory=SearchBudget)
    """Budget of the verifier-guided search; None turns the search off."""
    beta: float = 1.0
    """Temperature of the free energy F_beta (energy = -reward)."""
    max_new_tokens: int = 24
    seed: int = 0
    keep_per_prompt: int = 16
    """Samples per prompt kept as sequences for the KL and free-energy estimates."""
    chunk_sequences: int = 8192
    """At most this many sequences are sampled at once (memory bound for large n)."""
    bootstrap: int = 1000
    device: str = "cpu"

    def resolved_ks(self) -> list[int]:
        return sorted(set(self.ks)) if self.ks else default_ks(self.n)

    def check(self) -> None:
        """ProbeError on settings that cannot work, before anything is loaded or sampled."""
        if self.n < 1 or self.num_prompts < 1:
            raise ProbeError(f"--n and --num-prompts must be >= 1 (got n={self.n}, num_prompts={self.num_prompts})")
        ks = self.resolved_ks()
        if min(ks) < 1:
            raise ProbeError(f"every k must be >= 1, got {ks}")
        if max(ks) > self.n:
            raise ProbeError(f"n = {self.n} samples per prompt is smaller than the largest k = {max(ks)}: "
                             f"pass@k needs k <= n (raise --n or drop k > {self.n} from --k)")
        if not self.beta > 0:
            raise ProbeError(f"beta must be > 0, got {self.beta}")
        if not 1 <= self.keep_per_prompt <= self.n:
            raise ProbeError(f"keep_per_prompt must lie in [1, n={self.n}], got {self.keep_per_prompt}")
        if self.max_new_tokens < 1:
            raise ProbeError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ks"] = self.resolved_ks()
        d["thresholds"]["p_budget"] = self.thresholds.p_budget
        return d


def estimator_name(settings: ProbeSettings, has_solutions: bool) -> str:
    """The estimator of p(x) whose regimes drive the comparisons: sampling when n >= K, else likelihood."""
    if settings.n >= settings.thresholds.budget_K:
        return "sampling"
    if has_solutions:
        return "likelihood"
    raise ProbeError(
        f"n = {settings.n} < K = {settings.thresholds.budget_K} and the task cannot enumerate its solutions: "
        "the sampling estimator needs n >= K samples per prompt (raise --n or lower --budget-k)"
    )


def _known_stats(model, tokenizer, task, problems, device):
    """(p_known_P, max_logp_P) or (None, None) when the task cannot enumerate solutions."""
    from reweightlab.probe.likelihood import known_solution_stats

    if task.solutions(problems[0]) is None:
        return None, None
    stats = known_solution_stats(model, tokenizer, task, problems, device=device)
    return stats.p_known_P, stats.max_logp_P


def probe_model(model, tokenizer, task, problems, settings: ProbeSettings, *, label: str, progress: bool) -> dict:
    """Everything measured on one model alone (tensors kept for the comparisons; see `_model_summary`)."""
    th = settings.thresholds
    t0 = time.perf_counter()
    s = sample_counts(
        model, tokenizer, task, problems, n=settings.n, keep_per_prompt=settings.keep_per_prompt,
        max_new_tokens=settings.max_new_tokens, seed=settings.seed, chunk_sequences=settings.chunk_sequences,
        progress=progress, desc=f"sampling {label}",
    )
    t1 = time.perf_counter()
    p_known_P, max_logp_P = _known_stats(model, tokenizer, task, problems, settings.device)
    t2 = time.perf_counter()
    # Search where some estimator puts p below the budget and no sample has succeeded yet.
    low_P = s.p_P < th.p_budget
    if p_known_P is not None:
        low_P |= p_known_P < th.p_budget
    todo = torch.nonzero(low_P & (s.c_P == 0)).flatten()
    found_P = torch.zeros(len(problems), dtype=torch.bool)
    search = {"enabled": settings.search is not None, "prompts": int(todo.numel()), "found": 0,
              "forward_tokens": 0, "seconds": 0.0}
    if settings.search is not None and todo.numel():
        r = verifier_guided_search(model, tokenizer, task, [problems[i] for i in todo.tolist()],
                                   budget=settings.search, device=settings.device, progress=progress)
        found_P[todo] = r.found_P.bool()
        search.update(found=int(r.found_P.sum()), forward_tokens=int(r.forward_tokens))
    search["seconds"] = round(time.perf_counter() - t2, 2)
    evidence = dict(search_success_P=found_P | (s.c_P > 0), max_known_logp_P=max_logp_P, thresholds=th)
    regimes_sampling = classify(s.p_P, **evidence)
    regimes_likelihood = classify(p_known_P, **evidence) if p_known_P is not None else None
    return {
        "samples": s, "p_known_P": p_known_P, "max_logp_P": max_logp_P, "search_found_P": found_P,
        "search": search, "regimes_sampling": regimes_sampling, "regimes_likelihood": regimes_likelihood,
        "seconds": {"sampling": round(t1 - t0, 2), "likelihood": round(t2 - t1, 2), "search": search["seconds"]},
    }


def _regime_counts(regimes) -> dict[str, int] | None:
    return None if regimes is None else {r: sum(x == r for x in regimes) for r in REGIMES}


def _model_summary(m: dict, settings: ProbeSettings, primary: str) -> dict:
    s = m["samples"]
    ks = settings.resolved_ks()
    ci = bootstrap_passk(s.n_P, s.c_P, ks, num_resamples=settings.bootstrap, seed=settings.seed)
    out = {
        "pass_at_k": {str(k): est for k, (est, _, _) in ci.items()},
        "pass_at_k_ci95": {str(k): [lo, hi] for k, (_, lo, hi) in ci.items()},
        "mean_reward": float(s.rewards_PN.double().mean()),
        "regimes": _regime_counts(m[f"regimes_{primary}"]),
        "regimes_sampling": _regime_counts(m["regimes_sampling"]),
        "regimes_likelihood": _regime_counts(m["regimes_likelihood"]),
        "search": m["search"],
        "seconds": m["seconds"],
        "sample_tokens_per_s": round(s.completion_tokens / max(s.seconds, 1e-9)),
    }
    if m["p_known_P"] is not None:
        from reweightlab.probe.regimes import agreement

        agree = agreement(s.p_P, s.n_P, m["p_known_P"])
        same = sum(a == b for a, b in zip(m["regimes_sampling"], m["regimes_likelihood"], strict=True))
        out["p_known_mean"] = float(m["p_known_P"].mean())
        out["estimator_agreement"] = agree | {"same_regime": same / len(m["regimes_sampling"])}
    return out


def free_energy(trained, base, base_probe: dict, trained_probe: dict, settings: ProbeSettings,
                logp_base_N: torch.Tensor | None = None) -> dict:
    """F_beta[T] from T's kept samples, F* from all the base's samples, per prompt (SPEC 1).

    ``logp_base_N``: log B of each kept sample, when a pass over them already computed it."""
    kept = trained_probe["samples"].kept
    P, G = len(base_probe["samples"].n_P), trained_probe["samples"].keep_per_prompt
    logp_T_PG = kept.columns["logp_sampler"].double().sum(1).view(P, G)
    if logp_base_N is None:
        mbs = microbatches(kept, 256)
        logp_base_N = teacher_forced_logp(base, mbs, len(kept), kept.ids_NL.shape[1], settings.device).sum(1)
    logp_B_PG = logp_base_N.double().view(P, G)
    energy_PG = -kept.columns["reward"].double().view(P, G)
    F_P = free_energy_from_samples(energy_PG, logp_T_PG, logp_B_PG, settings.beta)
    return _gap_summary(F_P, base_probe, settings)


def _gap_summary(F_P: torch.Tensor, base_probe: dict, settings: ProbeSettings) -> dict:
    F_star_P = optimal_free_energy_from_samples(-base_probe["samples"].rewards_PN.double(), settings.beta)
    gap_P = F_P - F_star_P
    return {"beta": settings.beta, "mean_F": float(F_P.mean()), "mean_F_star": float(F_star_P.mean()),
            "mean_gap": float(gap_P.mean()), "gap_P": gap_P}


def base_free_energy(base_probe: dict, settings: ProbeSettings) -> dict:
    """For the base itself KL(B || B) = 0, so F_beta[B] = E_B[E]: the gap a reweighting starts from."""
    F_P = -base_probe["samples"].rewards_PN.double().mean(1)
    return _gap_summary(F_P, base_probe, settings)


def compare(trained, base, base_probe: dict, trained_probe: dict, settings: ProbeSettings, primary: str) -> dict:
    """Everything about one trained model relative to the base (SPEC 3.1 k*, 3.3)."""
    ks = settings.resolved_ks()
    sb, st = base_probe["samples"], trained_probe["samples"]
    from reweightlab.probe.passk_stats import passk_curve

    kstar = crossover_k(passk_curve(sb.n_P, sb.c_P, ks), passk_curve(st.n_P, st.c_P, ks)) if len(ks) > 1 else None
    facts = [{"regimes": p[f"regimes_{primary}"], "p_P": p["samples"].p_P, "c_P": p["samples"].c_P}
             for p in (base_probe, trained_probe)]
    out = {"crossover_k": kstar} | compare_to_base(*facts)
    # one base pass over T's kept samples gives the KL, the base likelihood of successes and log B for F
    out["distance"], logp_base_N = distance_and_base_logp(trained, base, st.kept, device=settings.device)
    out["base_loglik_of_successes"] = base_loglik_of_successes(base, st.kept, logp_base_N=logp_base_N)
    out["free_energy"] = free_energy(trained, base, base_probe, trained_probe, settings, logp_base_N)
    return out


def prompt_rows(problems, probes: dict[str, dict], gaps: dict[str, torch.Tensor], primary: str) -> list[dict]:
    """One JSON-ready row per prompt: n, c, p_known and the regime under each model."""
    rows = []
    for i, prob in enumerate(problems):
        models = {}
        for label, m in probes.items():
            s = m["samples"]
            row = {"n": int(s.n_P[i]), "c": int(s.c_P[i]), "regime": m[f"regimes_{primary}"][i],
                   "regime_sampling": m["regimes_sampling"][i]}
            if m["p_known_P"] is not None:
                logp = float(m["max_logp_P"][i])
                row |= {"p_known": float(m["p_known_P"][i]), "regime_likelihood": m["regimes_likelihood"][i],
                        "max_known_logp": logp if math.isfinite(logp) else None}
            row["search_found"] = bool(m["search_found_P"][i])
            if label in gaps:
                row["free_energy_gap"] = float(gaps[label][i])
            models[label] = row
        rows.append({"id": prob.id, "prompt": prob.prompt, "models": models})
    return rows


def write_outputs(out_dir: Path, summary: dict, rows: list[dict]) -> None:
    """probe_prompts.jsonl first, probe.json last: a folder with probe.json holds a finished probe."""
    write_text_atomic(out_dir / "probe_prompts.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    write_text_atomic(out_dir / "probe.json", json.dumps(summary, indent=2))
