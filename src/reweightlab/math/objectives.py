"""The two per-token losses every method reduces to.

weighted NLL:       ``loss_bt = -w_bt * logp_bt``      (SFT family with their weights; REINFORCE with w = A)
clipped surrogate:  ``loss_bt = -min(ratio A, clip(ratio) A)``   (PPO, Schulman et al., arXiv 1707.06347)

Both return per-token losses; :func:`reweightlab.math.reductions.reduce_loss` turns them into a scalar.
"""

from __future__ import annotations

import torch

# exp(20) ~ 4.9e8. A log-ratio beyond +-20 is far outside any trust region; clamping it keeps
# exp() finite so that backward never forms 0 * inf = NaN.
_MAX_LOG_RATIO = 20.0


def _broadcast_to_tokens(weights: torch.Tensor | float, like_BT: torch.Tensor, name: str) -> torch.Tensor:
    """Detached weights shaped for ``like_BT``: per-sequence ``[B]`` gains a trailing token axis."""
    w = torch.as_tensor(weights, device=like_BT.device).detach()
    if not w.is_floating_point():
        w = w.to(like_BT.dtype)
    if w.dim() == 0 or w.shape == like_BT.shape:
        return w
    if w.shape == like_BT.shape[:-1]:
        return w.unsqueeze(-1)
    raise ValueError(
        f"{name} has shape {tuple(w.shape)}; expected {tuple(like_BT.shape[:-1])} (per sequence) "
        f"or {tuple(like_BT.shape)} (per token)"
    )


def weighted_nll(logp_BT: torch.Tensor, weights: torch.Tensor | float) -> torch.Tensor:
    """Weighted negative log-likelihood per token: ``loss_bt = -sg(w) * logp_bt``.

    ``weights`` is per sequence (shape ``B``, broadcast over tokens), per token (shape ``BT``) or a
    scalar; it is detached here, so no gradient flows into it whatever the caller passes. With ``w = 1``
    this is SFT's cross-entropy; with ``w = A`` it is REINFORCE, ``grad = -A grad logp`` (Williams 1992).
    """
    w = _broadcast_to_tokens(weights, logp_BT, "weights")
    return -w * logp_BT


def clipped_surrogate(
    logp_BT: torch.Tensor,
    logp_old_BT: torch.Tensor,
    adv: torch.Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate per token (Schulman et al., arXiv 1707.06347; eps_high as in DAPO,
    arXiv 2503.14476):

        ratio = exp(logp - sg(logp_old))
        loss  = -min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A)

    ``adv`` is per sequence (``B``) or per token (``BT``), detached. ``eps_high`` defaults to ``eps_low``.
    Returns ``(loss_BT, clipped_BT)``; ``clipped_BT`` is True where the clipped branch is strictly the
    smaller one, i.e. where the token's gradient is zero (its mean over the mask is the clip ratio).

    On-policy (``logp_old = sg(logp)``) ratio = 1 and the gradient is exactly REINFORCE's
    ``-A grad logp`` (tests/invariants). The log-ratio is clamped to +-20 before exp, see _MAX_LOG_RATIO.
    """
    if eps_high is None:
        eps_high = eps_low
    if not (0.0 <= eps_low < 1.0 and eps_high >= 0.0):
        raise ValueError(f"need 0 <= eps_low < 1 and eps_high >= 0, got {eps_low}, {eps_high}")
    if logp_BT.shape != logp_old_BT.shape:
        raise ValueError("logp_BT and logp_old_BT must have the same shape")
    adv_BT = _broadcast_to_tokens(adv, logp_BT, "adv")
    log_ratio = (logp_BT - logp_old_BT.detach()).clamp(-_MAX_LOG_RATIO, _MAX_LOG_RATIO)
    ratio = torch.exp(log_ratio)
    unclipped = ratio * adv_BT
    clipped = ratio.clamp(1.0 - eps_low, 1.0 + eps_high) * adv_BT
    loss_BT = -torch.minimum(unclipped, clipped)
    clipped_BT = clipped < unclipped
    return loss_BT, clipped_BT
