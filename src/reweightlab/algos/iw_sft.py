"""Importance-weighted SFT (Qin & Springenberg, arXiv 2507.12856).

Curated data D+ (reward >= threshold; optionally SFT(Q) levels) drawn from pi_ref, each sequence
weighted by q / pi_ref, with q the current model (detached) or an EMA copy. This tightens the
SFT lower bound on the RL objective as q -> p_theta. Reference log-probs are computed once per
dataset and cached (pi_ref is frozen). At step 0 pi = pi_ref, so every weight is exactly 1.
"""

from reweightlab.algos import sft_q
from reweightlab.algos.filtered_sft import keep_filtered
from reweightlab.algos.method import Method
from reweightlab.math import IW_PRESETS, importance_weights, scale_to_count


def preset(offline):
    return IW_PRESETS[offline.iw_preset]


def prepare(store, offline):
    store = keep_filtered(store, offline.threshold)
    if offline.quality_thresholds:
        return sft_q.apply_quality(store, offline.quality_thresholds, offline.quality_mode)
    return store, None


def _weights(logp_q_BT, logp_ref_BT, mask_BT, p, self_normalise=False):
    return importance_weights(
        logp_q_BT, logp_ref_BT, mask_BT, level=p.level, temp=p.temp,
        clip_min=p.clip_min, clip_max=p.clip_max, self_normalise=self_normalise, aggregate=p.aggregate,
    )


def step_weights(step, ctx):
    """Self-normalised presets need the whole step: q's log-probs come from a no-grad pass (EMA copy)."""
    p = preset(ctx.offline)
    if not p.self_normalise:
        return None
    if p.level != "sequence":
        raise ValueError("self-normalised token-level importance weights are not supported")
    # Self-normalised over the step, times N: a weight of 1 still means "as much as SFT" under
    # token_mean (the direction of the gradient is unchanged).
    return scale_to_count(_weights(ctx.logp_q_of(step), step.logp_ref_NT, ctx.mask_of(step), p, self_normalise=True))


def token_weights(logp_BT, mb, ctx):
    if mb.step_weight_B is not None:
        w = mb.step_weight_B[:, None] * mb.mask_BT
    else:  # a weight per sequence (level 'sequence') or per token, from the current model as q
        w = _weights(logp_BT.detach(), mb.logp_ref_BT, mb.mask_BT, preset(ctx.offline))
        w = (w[:, None] if w.dim() == 1 else w) * mb.mask_BT
    return w if mb.weight_B is None else w * mb.weight_B[:, None]


def ema_decay(offline):
    p = preset(offline)
    return p.ema_decay if p.q == "ema" else None


METHOD = Method(
    name="iw_sft", summary="importance-weighted SFT: filtered samples weighted by q / pi_ref",
    source="base_samples", needs_scores=True, needs_reference=True,
    settings=("offline.threshold", *sft_q.SETTINGS, "offline.iw_preset"), ema_decay=ema_decay,
    check=sft_q.check_thresholds, prepare=prepare, step_weights=step_weights, token_weights=token_weights,
)
