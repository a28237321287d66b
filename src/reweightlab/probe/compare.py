"""A trained model T against its base B on the same prompts: every difference with a paired interval.

- pass@k difference at every k, and the crossover k* (Yue et al., arXiv 2504.13837);
- the regime transition matrix, and the pass@1 gain split by the *base's* regime: gains on basin/tail
  prompts are elicitation, on barrier/singularity prompts creation. The base regimes come from their
  own K samples, the base pass@1 from its n samples (independent), so no regression to the mean
  inflates creation;
- support change, prompt- and solution-level (P / E / S, SRR, NDR, SDS, NSCR: ``probe.support``),
  and diversity;
- distance: exact per-token KL(T || B) on T's samples (k1/k3 beside it), the forward KL(B || T) on
  B's samples, the base log-likelihood of T's successes;
- the free-energy gap per beta, split into between- and within-class parts (``probe.gap``).
One set of bootstrap resamples of the prompts serves every figure of a comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from reweightlab.math.passk import pass_at_k
from reweightlab.probe.distance import base_loglik_of_successes, distance_and_base_logp
from reweightlab.probe.elicitation import ELICITATION, transition_matrix
from reweightlab.probe.gap import class_log_masses, free_energy_gap
from reweightlab.probe.intervals import Resamples, interval
from reweightlab.probe.passk_stats import crossover_k
from reweightlab.probe.regimes import REGIMES
from reweightlab.probe.revision import revision_difference
from reweightlab.probe.study import ModelProbe, ProbeSettings
from reweightlab.probe.support import diversity_P, prompt_support_counts, solution_support_counts, support_figures


@dataclass(frozen=True)
class DiversityChange:
    """Trained minus base, per prompt, with intervals: distinct correct solutions and their entropy."""

    delta_distinct_solutions: dict
    delta_solution_entropy: dict


@dataclass(frozen=True)
class Comparison:
    """A trained model against its base (probe.json ``vs_base[label]``); each figure an interval
    ``{"value", "ci95"}`` or a table of them, keyed by k, regime, count name or beta."""

    delta_pass_at_k: dict[str, dict]
    crossover_k: dict
    transitions: dict[str, dict[str, int]]
    """Base regime -> trained regime -> prompts."""
    pass1_gain: dict
    """``gain_split``: the total, its elicitation and creation parts, per base regime."""
    support_prompts: dict
    support_solutions: dict
    diversity: DiversityChange
    distance: dict
    base_loglik_of_successes: dict
    free_energy: dict[str, dict]
    training_beta: float | None = None
    """The trained model's RL kl_beta, read from its run folder (None: offline, or no KL penalty)."""
    revision: dict | None = field(default=None, metadata={"json": "omitted"})
    """With revision episodes: first-attempt and within-episode success, trained minus base (paired)."""


def _passk_PK(m: ModelProbe, ks: list[int]) -> torch.Tensor:
    return torch.stack([pass_at_k(m.samples.n_P, m.samples.c_P, k) for k in ks], dim=1)


def _kstar(ks, base_K: torch.Tensor, trained_K: torch.Tensor) -> float | None:
    if len(ks) < 2:
        return None
    return crossover_k(dict(zip(ks, base_K.tolist(), strict=True)), dict(zip(ks, trained_K.tolist(), strict=True)))


def passk_differences(base: ModelProbe, trained: ModelProbe, ks: list[int], rs: Resamples) -> tuple[dict, dict]:
    """Δpass@k per k, and k* with its interval, the share of resamples where it exists, and where T is
    not ahead even at the smallest k."""
    A_PK, B_PK = _passk_PK(base, ks), _passk_PK(trained, ks)
    delta = {str(k): rs.mean(B_PK[:, j] - A_PK[:, j]) for j, k in enumerate(ks)}
    value = _kstar(ks, A_PK.mean(0), B_PK.mean(0))
    kstar = rs.statistic(lambda w: _kstar(ks, w @ A_PK / rs.P, w @ B_PK / rs.P), value)
    kstar["not_ahead_at_k1"] = float(((rs.W_RP @ (B_PK[:, 0] - A_PK[:, 0])) <= 0).double().mean())
    return delta, kstar


def gain_split(base_regimes: list[str], gain_P: torch.Tensor, rs: Resamples) -> dict:
    """The mean pass@1 gain, its elicitation + creation parts and per-regime contributions, each with an interval."""
    out = {"total": rs.mean(gain_P)}
    masks = {r: torch.tensor([b == r for b in base_regimes], dtype=torch.float64) for r in REGIMES}
    elic = sum(masks[r] for r in ELICITATION)
    out["elicitation"] = rs.mean(gain_P * elic)
    out["creation"] = rs.mean(gain_P * (1 - elic))
    out["by_base_regime"] = {}
    for r in REGIMES:
        count = int(masks[r].sum())
        out["by_base_regime"][r] = {
            "prompts": count,
            "mean_gain": rs.ratio(gain_P * masks[r], masks[r]) if count else interval(None, [None, None]),
            "contribution": rs.mean(gain_P * masks[r]),
        }
    return out


def _per_prompt(values_N: torch.Tensor, P: int) -> torch.Tensor:
    """Sum per prompt of a per-sequence value of the kept store (sequence n belongs to prompt n // keep)."""
    return values_N.double().view(P, -1).sum(1)


def distances(trained_model, base_model, base: ModelProbe, trained: ModelProbe, rs: Resamples, device) -> tuple:
    """(figures, per-prompt sequence KL(T || B), log B of T's kept samples)."""
    P = rs.P
    st, sb = trained.samples.kept, base.samples.kept
    rev, logp_base_N, kl_N = distance_and_base_logp(trained_model, base_model, st, device=device)
    tokens_P = _per_prompt(_tokens(st), P)
    rev["kl_exact_per_token_ci95"] = rs.ratio(_per_prompt(kl_N, P), tokens_P)["ci95"]
    fwd, _, kl_fwd_N = distance_and_base_logp(base_model, trained_model, sb, device=device)
    tokens_b_P = _per_prompt(_tokens(sb), P)
    figures = {"reverse": rev, "forward": {"kl_exact_per_token": fwd["kl_exact_per_token"],
                                           "kl_exact_per_token_ci95": rs.ratio(_per_prompt(kl_fwd_N, P),
                                                                               tokens_b_P)["ci95"],
                                           "kl_exact_per_sequence": fwd["kl_exact_per_sequence"],
                                           "tokens": fwd["tokens"]}}
    kl_seq_P = _per_prompt(kl_N, P) / trained.samples.keep_per_prompt
    return figures, kl_seq_P, logp_base_N


def _tokens(store) -> torch.Tensor:
    """Completion tokens per sequence of a store (EOS included where the sample stopped)."""
    return (store.total_len_N - store.prompt_len_N).double()


def model_class_log_masses(m: ModelProbe, classes_C: torch.Tensor, success_score: float) -> torch.Tensor:
    """log m(class | x), the same estimator on the same number of samples (the n) for the base and a
    trained model, so a model equal to its base has equal masses up to the failure classes' sampling
    noise and the pseudo-counts bias both alike: success mass from p_known (+ the
    sampled successes the list lacks) where the task lists its solutions, else the sampled rate; the
    failure classes share the rest by pseudo-counted frequency (``probe.gap``)."""
    p_success = None
    if m.p_known_P is not None:
        p_success = (m.p_known_P + m.unlisted_success_P).clamp(max=1.0)
    return class_log_masses(m.samples.rewards_PN, classes_C, success_score, p_success)


def gap_figures(base: ModelProbe, trained: ModelProbe | None, kl_seq_P, betas: list[float], success_score: float,
                rs: Resamples, classes_C: torch.Tensor) -> tuple[dict, dict[float, torch.Tensor]]:
    """Per beta: the mean gap and its between/within parts; against the base, the paired difference."""
    log_base_PC = model_class_log_masses(base, classes_C, success_score)
    T_PC = None if trained is None else model_class_log_masses(trained, classes_C, success_score).exp()
    out, gaps = {}, {}
    for beta in betas:
        g = free_energy_gap(classes_C, log_base_PC, T_PC, kl_seq_P, beta)
        row = {"gap": rs.mean(g.gap_P), "between": rs.mean(g.between_P), "within": rs.mean(g.within_P),
               "F": float(g.F_P.mean()), "F_star": float(g.F_star_P.mean())}
        if trained is not None:
            g0 = free_energy_gap(classes_C, log_base_PC, None, None, beta)
            row["gap_minus_base"] = rs.mean(g.gap_P - g0.gap_P)
        out[_beta_key(beta)] = row
        gaps[beta] = g.gap_P
    return out, gaps


def _beta_key(beta: float) -> str:
    return f"{beta:g}"


def sample_comparison(base: ModelProbe, trained: ModelProbe, settings: ProbeSettings, rs: Resamples) -> dict:
    """The figures of T against B that rest on the samples' successes alone (no model is run): Δpass@k,
    k*, the regime transitions, the pass@1 gain split, support change and diversity change."""
    ks = settings.resolved_ks()
    est = settings.estimator
    delta, kstar = passk_differences(base, trained, ks, rs)
    gain_P = trained.samples.p_P - base.samples.p_P
    support = support_figures(prompt_support_counts(base.under(est).reached_P, trained.under(est).reached_P), rs)
    sol_support = support_figures(solution_support_counts(base.solutions_K, trained.solutions_K), rs)
    (db, eb), (dt, et) = diversity_P(base.samples.solutions()), diversity_P(trained.samples.solutions())
    return dict(
        delta_pass_at_k=delta, crossover_k=kstar,
        transitions=transition_matrix(base.regimes_of(est), trained.regimes_of(est)),
        pass1_gain=gain_split(base.regimes_of(est), gain_P, rs),
        support_prompts=support, support_solutions=sol_support,
        diversity=DiversityChange(delta_distinct_solutions=rs.mean(dt - db), delta_solution_entropy=rs.mean(et - eb)),
    )


def compare(trained_model, base_model, base: ModelProbe, trained: ModelProbe, settings: ProbeSettings, *,
            betas: list[float], success_score: float, classes_C: torch.Tensor) -> tuple[Comparison, torch.Tensor]:
    """Every figure of T against B (module docstring); and T's per-prompt gap at the headline beta."""
    rs = Resamples(len(base.c_K_P), settings.bootstrap, seed=settings.seed)
    dist, kl_seq_P, logp_base_N = distances(trained_model, base_model, base, trained, rs, settings.device)
    fe, gaps = gap_figures(base, trained, kl_seq_P, betas, success_score, rs, classes_C)
    out = Comparison(
        **sample_comparison(base, trained, settings, rs),
        distance=dist,
        base_loglik_of_successes=base_loglik_of_successes(base_model, trained.samples.kept, logp_base_N=logp_base_N),
        free_energy=fe,
        revision=None if base.revision is None else revision_difference(base.revision, trained.revision, rs),
    )
    return out, gaps[settings.beta]
