"""KL divergence: the sample estimators used in RL losses, and the exact value from logits.

Estimators (Schulman, "Approximating KL Divergence", 2020, http://joschu.net/blog/kl-approx.html) for
tokens ``y ~ pi`` estimating ``KL(pi || pi_ref)``, with ``log_r = logp_ref - logp``:

    k1 = -log_r                       unbiased, high variance, can be negative
    k2 = log_r^2 / 2                  biased (low bias when pi ~ pi_ref), always >= 0
    k3 = exp(log_r) - 1 - log_r       unbiased, always >= 0

The direction matters: with ``log_r = logp - logp_ref`` instead (a published bug) ``E_pi[k3]`` is no
longer ``KL(pi || pi_ref)``. tests/invariants checks each expectation exactly on a categorical.

Used as a *loss* with the gradient flowing through ``logp`` only (samples held fixed), the expected
gradients differ from the values (Tang & Munos, arXiv 2506.09477 discusses this):
    E_pi[grad k1] = 0                              (k1 as a loss does nothing in expectation)
    E_pi[grad k2] = grad KL(pi || pi_ref)          (the gradient of the free-energy's KL term)
    E_pi[grad k3] = grad KL(pi_ref || pi)          (the reverse KL: GRPO's choice; different optimum)
tests/invariants checks these three identities too. To reach the Boltzmann target pi* by
sampling, use k2 as the loss term, or put ``-beta * k1`` (detached) into the reward.
"""

from __future__ import annotations

import torch

from .logprobs import _compute_dtype, _row_blocks

KL_ESTIMATORS = ("k1", "k2", "k3")


def kl_estimate(logp_BT: torch.Tensor, logp_ref_BT: torch.Tensor, estimator: str) -> torch.Tensor:
    """Per-token estimate of ``KL(pi || pi_ref)`` at tokens sampled from ``pi`` (see the module docstring).

    ``log_r = sg(logp_ref) - logp``; ``k1 = -log_r``, ``k2 = log_r^2 / 2``, ``k3 = exp(log_r) - 1 - log_r``
    (Schulman 2020). Gradient flows through ``logp`` (a loss term); ``pi_ref`` is frozen and detached.
    k3 is computed as ``expm1(log_r) - log_r`` in float64, which keeps its precision near ``pi = pi_ref``.
    """
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"unknown KL estimator {estimator!r}; allowed: {', '.join(KL_ESTIMATORS)}")
    if logp_BT.shape != logp_ref_BT.shape:
        raise ValueError("logp_BT and logp_ref_BT must have the same shape")
    log_r = logp_ref_BT.detach() - logp_BT
    if estimator == "k1":
        return -log_r
    if estimator == "k2":
        return 0.5 * log_r.square()
    # In float32, exp(x) - 1 - x has no correct digit for |x| < 1e-4 and expm1(x) - x still cancels;
    # pi ~ pi_ref is the common case early in training, so this elementwise step runs in float64.
    log_r64 = log_r.to(torch.float64)
    return (torch.expm1(log_r64) - log_r64).to(log_r.dtype)


def exact_kl(logits_p_BTV: torch.Tensor, logits_q_BTV: torch.Tensor) -> torch.Tensor:
    """Exact per-position ``KL(p || q) = sum_v p_v (log p_v - log q_v)`` over the full vocabulary.

    ``p = softmax(logits_p)``, ``q = softmax(logits_q)``, computed in float32 (float64 for float64 logits)
    in row chunks. Vocabulary entries with ``p_v = 0`` contribute 0. Differentiable (analysis code and
    exact-gradient tests use it); the probe reports it next to the k1/k3 sample estimates.
    """
    if logits_p_BTV.shape != logits_q_BTV.shape:
        raise ValueError("logits_p_BTV and logits_q_BTV must have the same shape")
    dtype = _compute_dtype(logits_p_BTV.dtype)
    pieces = []
    for start, stop, (zp, zq) in _row_blocks(logits_p_BTV, logits_q_BTV):
        logp = torch.log_softmax(zp.to(dtype).reshape(stop - start, -1), dim=-1)
        logq = torch.log_softmax(zq.to(dtype).reshape(stop - start, -1), dim=-1)
        p = torch.exp(logp)
        # 0 * log(0 / q) = 0 by convention. The log-ratio is masked too, so backward sees no 0 * inf.
        support = p > 0
        log_ratio = torch.where(support, logp - logq, torch.zeros_like(p))
        pieces.append(torch.where(support, p * log_ratio, torch.zeros_like(p)).sum(-1))
    if not pieces:
        return torch.zeros(logits_p_BTV.shape[:-1], dtype=dtype, device=logits_p_BTV.device)
    return torch.cat(pieces).reshape(logits_p_BTV.shape[:-1])
