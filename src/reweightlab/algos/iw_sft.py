"""Importance-weighted SFT (Qin & Springenberg, arXiv 2507.12856).

Curated data D+ (reward >= threshold; optionally SFT(Q) levels) drawn from pi_ref, each sequence
weighted by q / pi_ref, with q the current model (detached) or an EMA copy. This tightens the
SFT lower bound on the RL objective as q -> p_theta. Reference log-probs are computed once per
dataset and cached (pi_ref is frozen). At step 0 pi = pi_ref, so every weight is exactly 1.
"""

from reweightlab.algos import sft_q
from reweightlab.algos.filtered_sft import keep_filtered
from reweightlab.math import IW_PRESETS, importance_weights

needs_ref_logp = True


def preset(cfg):
    return IW_PRESETS[cfg.offline.iw_preset]


def prepare(store, cfg):
    store = keep_filtered(store, cfg.offline.threshold)
    if cfg.offline.quality_thresholds:
        return sft_q.apply_quality(store, cfg.offline.quality_thresholds, cfg.offline.quality_mode)
    return store, None


def _weights(logp_q_BT, logp_ref_BT, mask_BT, p):
    return importance_weights(
        logp_q_BT, logp_ref_BT, mask_BT, level=p.level, temp=p.temp,
        clip_min=p.clip_min, clip_max=p.clip_max, self_normalise=p.self_normalise,
    )


def step_columns(step, ctx):
    """Self-normalised presets need the whole step: q's log-probs come from a no-grad pass (EMA copy)."""
    p = preset(ctx.cfg)
    if not p.self_normalise:
        return {}
    logp_q = ctx.logp_q_of(step)  # (N, L-1) target-aligned, from the EMA model
    w = _weights(logp_q, step.columns["logp_ref"], ctx.mask_of(step), p)
    if p.level == "sequence":
        # Self-normalised weights sum to 1 over the step; scale by N so that a weight of 1 still
        # means "as much as SFT" under token_mean (the direction of the gradient is unchanged).
        return {"iw_weight": w * step.columns["logp_ref"].shape[0]}
    raise ValueError("self-normalised token-level importance weights are not supported")


def token_weights(logp_BT, mb, ctx):
    p = preset(ctx.cfg)
    if "iw_weight" in mb.columns:
        w = mb.columns["iw_weight"][:, None] * mb.mask_BT
    else:
        w = _weights(logp_BT.detach(), mb.columns["logp_ref"], mb.mask_BT, p)
        w = (w[:, None] if w.dim() == 1 else w) * mb.mask_BT
    q = mb.columns.get("quality_weight")
    return w if q is None else w * q[:, None]
