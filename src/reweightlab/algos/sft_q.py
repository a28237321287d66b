"""SFT(Q): sequences weighted by the number of quality thresholds their score clears.

As a sampling multiplicity (the authors' control code: a sequence above 3 thresholds appears three
times in the training multiset) or as a loss weight.
"""

from reweightlab.math import quality_levels, quality_multiset_indices, unit_weights

needs_ref_logp = False


def apply_quality(store, thresholds, mode: str):
    """Drop sequences that clear no threshold; return (store, draw_N or None)."""
    levels = quality_levels(store.columns["reward"], tuple(thresholds))
    keep = (levels > 0).nonzero().squeeze(1)
    if keep.numel() == 0:
        raise RuntimeError(f"no sample clears any quality threshold {list(thresholds)}: nothing to train on")
    store = store.select(keep)
    levels = levels[keep]
    if mode == "multiplicity":
        return store, quality_multiset_indices(levels)
    store.columns["quality_weight"] = levels.float()
    return store, None


def prepare(store, cfg):
    return apply_quality(store, cfg.offline.quality_thresholds, cfg.offline.quality_mode)


def step_columns(step, ctx):
    return {}


def token_weights(logp_BT, mb, ctx):
    w = unit_weights(mb.mask_BT)
    q = mb.columns.get("quality_weight")
    return w if q is None else w * q[:, None]



