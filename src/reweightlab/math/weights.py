"""Detached per-sequence / per-token weights: the only thing that differs between the SFT and RL
methods (signal -> detached weights -> weighted log-likelihood -> reduction).

Every function returns a tensor with no autograd history: a weight is a number the loss is
multiplied by, never something the optimiser may change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# exp(80) ~ 5.5e34 is finite in float32 (max ~3.4e38) with room for a batch sum; larger log-weights
# saturate here instead of overflowing to inf.
_MAX_LOG_WEIGHT = 80.0


def _float(t: torch.Tensor) -> torch.Tensor:
    """Detached floating copy: integer/bool rewards become float32, float64 stays float64."""
    t = t.detach()
    return t if t.is_floating_point() else t.to(torch.float32)


# --- SFT family --------------------------------------------------------------------------------------


def unit_weights(mask_BT: torch.Tensor) -> torch.Tensor:
    """Plain SFT weight: ``w_bt = 1`` on completion tokens, 0 elsewhere (the mask as float32)."""
    return mask_BT.detach().to(torch.float32)


def threshold_weights(rewards_B: torch.Tensor, threshold: float) -> torch.Tensor:
    """Filtered SFT / rejection-sampling fine-tuning: ``w_b = 1[r_b >= threshold]``.

    Training on the kept samples is the lower bound of RL for a 0/1 reward (Qin & Springenberg,
    arXiv 2507.12856).
    """
    return (rewards_B.detach() >= threshold).to(torch.float32)


def _check_increasing(thresholds: Sequence[float] | torch.Tensor) -> torch.Tensor:
    th = torch.as_tensor(thresholds, dtype=torch.float64).detach().flatten()
    if th.numel() == 0:
        raise ValueError("thresholds must not be empty")
    if th.numel() > 1 and not bool((th[1:] > th[:-1]).all()):
        raise ValueError(f"thresholds must be strictly increasing, got {th.tolist()}")
    return th


def quality_levels(scores_B: torch.Tensor, thresholds: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """SFT(Q) quality level: ``level_b = sum_i 1[S_b > c_i]`` for ``c_1 < ... < c_C`` (Qin & Springenberg,
    arXiv 2507.12856). Strict ``>``: a score equal to a threshold does not clear it.

    Float32 tensor of the scores' shape. Use it as a weight, or as a sampling multiplicity through
    :func:`quality_multiset_indices`.
    """
    th = _check_increasing(thresholds).to(scores_B.device)
    scores = scores_B.detach().to(torch.float64)
    return (scores.unsqueeze(-1) > th).sum(-1).to(torch.float32)


def percentile_thresholds(
    scores_N: torch.Tensor, percentiles: Sequence[float] = (90.0, 95.0, 98.0)
) -> list[float]:
    """Score thresholds at the given percentiles of the data (bins at 90/95/98).

    Linear interpolation between order statistics, as numpy's default ``percentile``: with the sorted
    scores ``s_0 <= ... <= s_{N-1}``, position ``h = (N - 1) p / 100``, value
    ``s_floor(h) + (h - floor(h)) (s_ceil(h) - s_floor(h))``. Computed in float64.

    Ties in the data can make thresholds equal (e.g. 0/1 rewards), which
    :func:`quality_levels` then rejects: binary scores have no quality bins to speak of.
    """
    scores = scores_N.detach().flatten().to(torch.float64)
    if scores.numel() == 0:
        raise ValueError("percentile_thresholds needs at least one score")
    if any(not 0.0 <= p <= 100.0 for p in percentiles):
        raise ValueError(f"percentiles must lie in [0, 100], got {list(percentiles)}")
    ordered = torch.sort(scores).values
    n = ordered.numel()
    out = []
    for p in percentiles:
        h = (n - 1) * float(p) / 100.0
        lo, hi = math.floor(h), math.ceil(h)
        frac = h - lo
        out.append(float(ordered[lo] + frac * (ordered[hi] - ordered[lo])))
    return out


def quality_multiset_indices(levels_N: torch.Tensor) -> torch.Tensor:
    """SFT(Q) as a sampling multiplicity: item ``i`` appears ``int(levels_N[i])`` times.

    Returns a LongTensor of indices into the data, e.g. levels ``[0, 3, 1]`` -> ``[1, 1, 1, 2]``; batches
    drawn uniformly from it weight each item by its level in expectation.
    """
    levels = levels_N.detach().flatten()
    counts = levels.round().long()
    if bool((counts < 0).any()) or not bool((counts.to(levels.dtype) == levels).all()):
        raise ValueError("levels must be non-negative integers")
    return torch.repeat_interleave(torch.arange(levels.numel(), device=levels.device), counts)


# --- iw-SFT (Qin & Springenberg, arXiv 2507.12856) -----------------------------------------------------

_IW_LEVELS = ("sequence", "token")
_IW_Q = ("current", "ema")
_IW_AGGREGATES = ("mean", "sum")


@dataclass(frozen=True)
class IWPreset:
    """A complete setting of the iw-SFT weight.

    level: 'sequence' (one weight per sequence, on all its tokens) or 'token'.
    temp: multiplies the log-ratio before exp.
    clip_min, clip_max: the weight is clipped to [clip_min, clip_max].
    self_normalise: divide by the sum of the weights over the batch.
    q: the auxiliary policy, 'current' (the trained model, detached) or 'ema' (an EMA copy of it).
    ema_decay: the EMA decay; required for q='ema', must be None otherwise.
    aggregate: sequence level only: the per-token log-ratios are averaged ('mean', the authors' code)
      or summed ('sum': the sequence's own likelihood ratio q(y|x) / pi_ref(y|x)).
    """

    level: str
    temp: float
    clip_min: float
    clip_max: float
    self_normalise: bool
    q: str
    ema_decay: float | None
    aggregate: str = "mean"

    def __post_init__(self) -> None:
        if self.level not in _IW_LEVELS:
            raise ValueError(f"level must be one of {_IW_LEVELS}, got {self.level!r}")
        if self.q not in _IW_Q:
            raise ValueError(f"q must be one of {_IW_Q}, got {self.q!r}")
        if (self.q == "ema") != (self.ema_decay is not None):
            raise ValueError("ema_decay is required for q='ema' and must be None for q='current'")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.aggregate not in _IW_AGGREGATES or (self.level == "token" and self.aggregate != "mean"):
            raise ValueError(f"aggregate must be one of {_IW_AGGREGATES} (sequence level; 'mean' at token level), "
                             f"got {self.aggregate!r}")
        _check_iw_knobs(self.level, self.temp, self.clip_min, self.clip_max)

    def weight_kwargs(self) -> dict:
        """The keyword arguments of :func:`importance_weights` that this preset fixes."""
        return {
            "level": self.level,
            "temp": self.temp,
            "clip_min": self.clip_min,
            "clip_max": self.clip_max,
            "self_normalise": self.self_normalise,
            "aggregate": self.aggregate,
        }


def _check_iw_knobs(level: str, temp: float, clip_min: float, clip_max: float) -> None:
    if level not in _IW_LEVELS:
        raise ValueError(f"level must be one of {_IW_LEVELS}, got {level!r}")
    if not temp > 0:
        raise ValueError(f"temp must be > 0, got {temp}")
    if not 0.0 <= clip_min <= clip_max:
        raise ValueError(f"need 0 <= clip_min <= clip_max, got [{clip_min}, {clip_max}]")


IW_PRESETS: dict[str, IWPreset] = {
    # The authors' LLM code: sequence weight from the mean per-token log-ratio, q = current model.
    "llm": IWPreset("sequence", 1.0, 0.0, 16.0, False, "current", None),
    "llm-token": IWPreset("token", 1.0, 0.2, 1.8, False, "current", None),
    # Ours, beside the authors' preset: the sequence's own ratio (log-ratios summed, not averaged), same
    # clip. It is the ratio the lower bound is tight at (q = p_theta), at the price of more variance.
    "llm-seq": IWPreset("sequence", 1.0, 0.0, 16.0, False, "current", None, aggregate="sum"),
    # The authors' control code: sharper (temp 10), self-normalised, q = EMA of theta.
    "control": IWPreset("sequence", 10.0, 0.0, 1000.0, True, "ema", 0.9),
}


def importance_weights(
    logp_q_BT: torch.Tensor,
    logp_ref_BT: torch.Tensor,
    mask_BT: torch.Tensor,
    *,
    level: str = "sequence",
    temp: float = 1.0,
    clip_min: float = 0.0,
    clip_max: float = 16.0,
    self_normalise: bool = False,
    aggregate: str = "mean",
) -> torch.Tensor:
    """iw-SFT importance weights (Qin & Springenberg, arXiv 2507.12856).

    With ``rho_bt = logp_q_bt - logp_ref_bt`` on completion tokens ``M_b``:

    - sequence level: ``w_b = clip(exp(temp * mean_{t in M_b} rho_bt), clip_min, clip_max)``, shape ``B``
      (``aggregate='sum'``: the sum over ``M_b``, i.e. the sequence's likelihood ratio, tempered and clipped);
    - token level:    ``w_bt = clip(exp(temp * rho_bt), clip_min, clip_max)``, shape ``BT``, 0 on
      masked tokens (the presets use temp 1 at token level; other temps apply the same way);
    - self_normalise: ``w / sum(w)``, over sequences (sequence level) or valid tokens (token level).
      Self-normalised weights sum to 1, so pair them with a sum-type reduction or rescale them.

    The clip is applied to the exponent (``log clip_min <= temp*rho <= log clip_max``; exp is monotone, so
    this equals clipping the weight), so nothing overflows; self-normalisation is a softmax of the clipped
    log-weights. An unbounded ``clip_max`` saturates at ``exp(80)``. A sequence with no completion tokens
    gets weight 0 (it has no tokens to weigh and must not take a share of a self-normalised batch).

    When ``logp_q == logp_ref`` every weight is exactly 1 (before self-normalisation and clipping to a
    ``clip_min > 1``). Detached; float32 (float64 for float64 inputs).
    """
    _check_iw_knobs(level, temp, clip_min, clip_max)
    if aggregate not in _IW_AGGREGATES or (level == "token" and aggregate != "mean"):
        raise ValueError(f"aggregate must be one of {_IW_AGGREGATES} (sequence level only), got {aggregate!r}")
    if not logp_q_BT.shape == logp_ref_BT.shape == mask_BT.shape:
        raise ValueError("logp_q_BT, logp_ref_BT and mask_BT must have the same shape")
    dtype = torch.float64 if logp_q_BT.dtype == torch.float64 else torch.float32
    valid_BT = mask_BT.bool()
    rho_BT = logp_q_BT.detach().to(dtype) - logp_ref_BT.detach().to(dtype)
    # where, not multiply: padding may hold -inf - (-inf) = NaN.
    rho_BT = torch.where(valid_BT, rho_BT, torch.zeros_like(rho_BT))
    if level == "sequence":
        n_B = valid_BT.sum(-1)
        exponent = temp * rho_BT.sum(-1)
        if aggregate == "mean":
            exponent = exponent / n_B.clamp(min=1).to(dtype)
        valid = n_B > 0
    else:
        exponent = temp * rho_BT
        valid = valid_BT
    log_lo = math.log(clip_min) if clip_min > 0 else -math.inf
    log_hi = math.log(clip_max) if clip_max > 0 else -math.inf
    log_w = exponent.clamp(min=log_lo, max=log_hi)
    log_w = torch.where(valid, log_w, torch.full_like(log_w, -math.inf))
    if self_normalise:
        if not bool(valid.any()):
            return torch.zeros_like(log_w)
        # softmax of the log-weights = w / sum(w), without forming a possibly huge sum.
        return torch.softmax(log_w.flatten(), dim=0).reshape(log_w.shape)
    return torch.exp(log_w.clamp(max=_MAX_LOG_WEIGHT))


def scale_to_count(w_N: torch.Tensor) -> torch.Tensor:
    """Self-normalised weights (summing to 1 over N items) times N.

    With a mean-type reduction a weight of 1 then means "as much as SFT"; the direction of the
    gradient is unchanged. Used by iw-SFT's self-normalised presets, for sequences and trajectories.
    """
    return w_N * w_N.numel()


@torch.no_grad()
def ema_update_(ema_params, params, decay: float) -> None:
    """In place: ``theta_q <- decay * theta_q + (1 - decay) * theta`` for each pair of tensors (iw-SFT's
    EMA copy q of the policy)."""
    for pe, p in zip(ema_params, params, strict=True):
        pe.mul_(decay).add_(p.detach(), alpha=1.0 - decay)


# --- DFT, RWR -------------------------------------------------------------------------------------------


def token_probability_weights(logp_BT: torch.Tensor) -> torch.Tensor:
    """DFT weight ``w_bt = sg(pi_theta(y_t | y_<t, x)) = exp(logp_bt).detach()``
    (Wu et al., arXiv 2508.05629). Down-weights tokens the model finds unlikely, which SFT's gradient would otherwise
    over-emphasise (its implicit 1/pi reward)."""
    return torch.exp(logp_BT.detach())


def rwr_weights(rewards_B: torch.Tensor, beta: float) -> torch.Tensor:
    """Reward-weighted regression weights ``w_b = B * softmax(r / beta)_b`` (Peters & Schaal 2007).

    ``exp(r_b / beta)`` normalised over the batch; our choice is to normalise to mean 1 (not sum 1) so a
    learning rate tuned for SFT (all weights 1) stays comparable. Softmax keeps it finite for any r/beta.
    """
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    r = _float(rewards_B)
    if r.numel() == 0:
        return r
    return (r.numel() * torch.softmax(r.flatten() / beta, dim=0)).reshape(r.shape)


# --- RL advantages ---------------------------------------------------------------------------------------
# Std scaling uses the population std (unbiased=False): a non-constant group then has advantages with
# exactly zero mean and unit mean square (up to eps). torch's default (Bessel-corrected) std, which
# some GRPO implementations use, gives advantages smaller by sqrt((G-1)/G).

STD_SCALINGS = ("group", "batch", "none")


def _check_scaling(std_scaling: str, allowed: tuple[str, ...]) -> None:
    if std_scaling not in allowed:
        raise ValueError(f"unknown std_scaling {std_scaling!r}; allowed: {', '.join(allowed)}")


def _zero_if_constant(adv: torch.Tensor, r: torch.Tensor, dim: int | None) -> torch.Tensor:
    """Exactly 0 where all rewards are equal: r - mean(r) is not exactly 0 in floating point
    (0.1 + 0.1 + 0.1 != 0.3), and no signal must mean no update (tests/invariants)."""
    if r.numel() == 0:
        return adv
    if dim is None:
        constant = r.amax() == r.amin()
    else:
        constant = r.amax(dim, keepdim=True) == r.amin(dim, keepdim=True)
    return torch.where(constant, torch.zeros_like(adv), adv)


def _scale(adv_PG: torch.Tensor, r_PG: torch.Tensor, std_scaling: str, eps: float) -> torch.Tensor:
    if std_scaling == "group":
        return adv_PG / (r_PG.std(-1, unbiased=False, keepdim=True) + eps)
    if std_scaling == "batch":
        return adv_PG / (r_PG.std(unbiased=False) + eps)
    return adv_PG


def batch_baseline_advantages(
    rewards_N: torch.Tensor, std_scaling: str = "none", eps: float = 1e-6
) -> torch.Tensor:
    """REINFORCE with a batch-mean baseline (Williams 1992): ``A_n = r_n - mean(r)``.

    ``std_scaling``: 'none', or 'batch' (divide by the batch's population std + eps). 'group' has no
    groups here and is rejected. All-equal rewards give exactly 0.
    """
    _check_scaling(std_scaling, ("batch", "none"))
    r = _float(rewards_N)
    adv = _scale(r - r.mean(), r, std_scaling, eps)
    return _zero_if_constant(adv, r, None)


def group_advantages(rewards_PG: torch.Tensor, std_scaling: str = "group", eps: float = 1e-6) -> torch.Tensor:
    """Group-relative advantages (GRPO, Shao et al., arXiv 2402.03300): ``A_pg = (r_pg - mean_g r_pg) / s``.

    ``std_scaling``: 'group' (``s`` = the group's population std + eps, GRPO), 'batch' (``s`` = the whole
    batch's std + eps), 'none' (``s = 1``, as Dr. GRPO, arXiv 2503.20783). A group whose rewards are all
    equal gets exactly 0 advantage: it carries no learning signal.
    """
    _check_scaling(std_scaling, STD_SCALINGS)
    r = _float(rewards_PG)
    if r.dim() < 1:
        raise ValueError("rewards_PG needs a group dimension (the last one)")
    adv = _scale(r - r.mean(-1, keepdim=True), r, std_scaling, eps)
    return _zero_if_constant(adv, r, -1)


def leave_one_out_advantages(
    rewards_PG: torch.Tensor, std_scaling: str = "none", eps: float = 1e-6
) -> torch.Tensor:
    """RLOO advantages ``A_i = r_i - mean_{j != i} r_j`` (Kool et al. 2019; arXiv 2402.14740).

    The baseline excludes the sample itself, so the policy gradient stays unbiased. Computed as
    ``(G r_i - sum_j r_j) / (G - 1)``; needs ``G >= 2``. Std scaling as in :func:`group_advantages`.
    """
    _check_scaling(std_scaling, STD_SCALINGS)
    r = _float(rewards_PG)
    if r.dim() < 1 or r.shape[-1] < 2:
        raise ValueError("leave-one-out advantages need G >= 2 samples per prompt (last dimension)")
    g = r.shape[-1]
    adv = (g * r - r.sum(-1, keepdim=True)) / (g - 1)
    adv = _scale(adv, r, std_scaling, eps)
    return _zero_if_constant(adv, r, -1)
