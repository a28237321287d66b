"""KL divergence: the sample estimators used in RL losses, and the exact value from logits.

Estimators (Schulman, "Approximating KL Divergence", 2020, http://joschu.net/blog/kl-approx.html) for
tokens ``y ~ pi`` estimating ``KL(pi || pi_ref)``, with ``log_r = logp_ref - logp``:

    k1 = -log_r                       unbiased, high variance, can be negative
    k2 = log_r^2 / 2                  biased (low bias when pi ~ pi_ref), always >= 0
    k3 = exp(log_r) - 1 - log_r       unbiased, always >= 0

The direction matters: with ``log_r = logp - logp_ref`` instead (a published bug) ``E_pi[k3]`` is no
longer ``KL(pi || pi_ref)``. tests/invariants checks each expectation exactly on a categorical.

Used as a per-token *loss* with the gradient flowing through ``logp`` only (samples held fixed), the
expected gradients at one token differ from the values:
    E_pi[grad k1] = 0                              (k1 as a loss does nothing in expectation)
    E_pi[grad k2] = grad KL(pi || pi_ref)          (at that token, its prefix held fixed)
    E_pi[grad k3] = grad KL(pi_ref || pi)          (the reverse KL: GRPO's choice; another optimum)
tests/invariants checks these identities on a categorical.

For completions of more than one token, any per-token term (each token's term differentiated with
its prefix held fixed) is only a *partial* gradient of the sequence KL: it drops the score-function
terms ``grad log pi(y_t) * sum_{t' > t} (logp_t' - logp_ref_t')``, by which changing token t changes
which later tokens are drawn (Tang & Munos, arXiv 2506.09477). Two forms follow the full gradient
of ``KL_seq(pi || pi_ref) = E_pi[sum_t (logp_t - logp_ref_t)]``, and so have the Boltzmann target
``pi* = pi_ref exp(r / beta) / Z`` of whole completions as the optimum of ``E[r] - beta KL_seq``:
  - ``sequence_kl_loss``: ``sum_t logp_t * sg(sum_{t' >= t} (logp_t' - logp_ref_t'))`` in the loss;
  - ``-beta * sum_t k1_t`` (detached) in each sequence's reward, with a REINFORCE or RLOO advantage
    and no std scaling (a per-group std rescales the effective beta group by group).
tests/invariants checks that both reach pi* on 2-token completions and that per-token k2 does not.
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


def sequence_kl_loss(logp_BT: torch.Tensor, logp_ref_BT: torch.Tensor, mask_BT: torch.Tensor) -> torch.Tensor:
    """Per-token loss whose expected gradient, for completions sampled from ``pi``, is ``grad KL_seq``.

    ``loss_bt = logp_bt * sg(sum_{t' >= t} m_bt' (logp_bt' - logp_ref_bt'))`` on completion tokens
    (``m = mask_BT``), 0 elsewhere. Its gradient is ``sum_t grad logp_t * KL-to-go_t``: the score
    function of each token times the log-ratio of it and every later token, which is
    ``grad E_pi[sum_t (logp_t - logp_ref_t)]`` (the terms for earlier tokens have zero expectation;
    ``E[grad logp_t] = 0``). The value is not a KL estimate: log ``kl_estimate(..., 'k3')`` for that.
    Tang & Munos, arXiv 2506.09477. Computed in float64 where the log-ratios are summed.
    """
    if not logp_BT.shape == logp_ref_BT.shape == mask_BT.shape:
        raise ValueError("logp_BT, logp_ref_BT and mask_BT must have the same shape")
    m = mask_BT.bool()
    log_ratio = torch.where(m, logp_BT.detach().double() - logp_ref_BT.detach().double(),
                            torch.zeros_like(logp_BT, dtype=torch.float64))
    to_go = log_ratio.flip(-1).cumsum(-1).flip(-1)  # sum over t' >= t
    return torch.where(m, logp_BT * to_go.to(logp_BT.dtype), torch.zeros_like(logp_BT))
