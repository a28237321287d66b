"""Free-energy gap of a trained model against its base, per prompt (SPEC 1 and 3.3).

With energy ``E = -r`` (RL) and temperature ``beta > 0``:

    F_beta[T](x) = E_{y~T}[E(x,y) + beta (log T(y|x) - log B(y|x))]      from T's own samples
    F*(x)        = -beta log E_{y~B}[exp(-E(x,y)/beta)]                     from B's own samples
    gap(x)       = F_beta[T](x) - F*(x) = beta KL(T(.|x) || pi*(.|x)) >= 0

``log T`` is the sampler's own sequence log-probability (temperature 1, no top-p, so it is the model's
distribution), ``log B`` one teacher-forced pass of the base over T's samples; both sum over every
completion token, EOS included. A completion cut at ``max_new_tokens`` counts as the (truncated)
string it is: both models give that prefix its probability, so the identity holds on the space of
completions of at most ``max_new_tokens`` tokens, which is the space the verifier scores.

The F estimate is unbiased; the F* estimate is a log-mean-exp, consistent and biased upward for finite
``G`` (``E[log Zhat] <= log Z``), by about ``beta Var(w) / (2 G E[w]^2)`` with ``w = exp(-E/beta)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reweightlab.math.freeenergy import free_energy_from_samples, optimal_free_energy_from_samples
from reweightlab.rollout import HFRolloutEngine
from reweightlab.train.batching import microbatches
from reweightlab.train.data import sample_and_score
from reweightlab.train.step import teacher_forced_logp


@dataclass
class PromptGaps:
    """Per-prompt free energies (float64, shape P) and the per-sample terms they average (P x G).

    ``energy_PG`` and ``log_ratio_PG = log T - log B`` are on T's samples, ``energy_base_PG`` on B's.
    """

    F_P: torch.Tensor
    F_star_P: torch.Tensor
    gap_P: torch.Tensor
    beta: float
    samples_per_prompt: int
    energy_PG: torch.Tensor | None = None
    log_ratio_PG: torch.Tensor | None = None
    energy_base_PG: torch.Tensor | None = None

    @property
    def mean_gap(self) -> float:
        """Average gap over prompts (the one figure a report shows next to the per-prompt table)."""
        return float(self.gap_P.mean())

    def to_dict(self) -> dict:
        """Per-prompt values as plain lists (JSON-ready); the per-sample terms are left out."""
        return {
            "beta": self.beta,
            "samples_per_prompt": self.samples_per_prompt,
            "mean_gap": self.mean_gap,
            "F": self.F_P.tolist(),
            "F_star": self.F_star_P.tolist(),
            "gap": self.gap_P.tolist(),
        }


def _engine(model, tokenizer) -> HFRolloutEngine:
    return HFRolloutEngine(model, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


def free_energy_gap_per_prompt(
    trained, base, tokenizer, task, problems, *, beta: float, samples_per_prompt: int, max_new_tokens: int,
    seed: int = 0, device="cpu", sequences_per_microbatch: int = 256,
) -> PromptGaps:
    """``F_beta[T](x)``, ``F*(x)`` and their gap for each problem, by sampling (module docstring).

    G = ``samples_per_prompt`` samples of ``trained`` (seed ``seed``) give F; as many samples of
    ``base`` (seed ``seed + 1``, independent of T's) give F*. ``device`` is where ``base`` lives for
    the teacher-forced pass; each model samples on its own device.
    """
    if not beta > 0:  # also rejects NaN; checked before any sampling is paid for
        raise ValueError(f"beta must be > 0, got {beta}")
    if samples_per_prompt < 1:
        raise ValueError(f"samples_per_prompt must be >= 1, got {samples_per_prompt}")
    P, G = len(problems), samples_per_prompt
    common = dict(samples_per_prompt=G, max_new_tokens=max_new_tokens, temperature=1.0, top_p=1.0)

    on_T = sample_and_score(_engine(trained, tokenizer), task, problems, tokenizer, seed=seed, **common)
    store = on_T.store
    # logp_sampler and the teacher-forced log-probs are zero outside the completion: a row sum is the
    # sequence log-probability (EOS included where the sample stopped).
    logp_T_PG = store.columns["logp_sampler"].double().sum(1).view(P, G)
    logp_B_NT = teacher_forced_logp(
        base, microbatches(store, sequences_per_microbatch), len(store), store.ids_NL.shape[1], device
    )
    logp_B_PG = logp_B_NT.double().sum(1).view(P, G)
    energy_PG = -on_T.rewards_PG.double()
    F_P = free_energy_from_samples(energy_PG, logp_T_PG, logp_B_PG, beta)

    on_B = sample_and_score(_engine(base, tokenizer), task, problems, tokenizer, seed=seed + 1, **common)
    energy_base_PG = -on_B.rewards_PG.double()
    F_star_P = optimal_free_energy_from_samples(energy_base_PG, beta)

    return PromptGaps(
        F_P=F_P, F_star_P=F_star_P, gap_P=F_P - F_star_P, beta=float(beta), samples_per_prompt=G,
        energy_PG=energy_PG, log_ratio_PG=logp_T_PG - logp_B_PG, energy_base_PG=energy_base_PG,
    )
