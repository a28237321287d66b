"""SFT(Q): sequences weighted by the number of quality thresholds their score clears.

As a sampling multiplicity (the authors' control code: a sequence above 3 thresholds appears three
times in the training multiset) or as a loss weight.
"""

from reweightlab.algos.method import Method, NothingToTrainError
from reweightlab.math import quality_levels, quality_multiset_indices, unit_weights

SETTINGS = ("offline.quality_thresholds", "offline.quality_mode")


def apply_quality(store, thresholds, mode: str):
    """Drop sequences that clear no threshold; return (store, draw_N or None)."""
    levels = quality_levels(store.reward_N, tuple(thresholds))
    keep = (levels > 0).nonzero().squeeze(1)
    if keep.numel() == 0:
        raise NothingToTrainError(f"no sample clears any quality threshold {list(thresholds)}: nothing to train on")
    store = store.select(keep)
    levels = levels[keep]
    if mode == "multiplicity":
        return store, quality_multiset_indices(levels)
    return store.replace(weight_N=levels.float()), None


def prepare(store, offline):
    return apply_quality(store, offline.quality_thresholds, offline.quality_mode)


def token_weights(logp_BT, mb, ctx):
    w = unit_weights(mb.mask_BT)
    return w if mb.weight_B is None else w * mb.weight_B[:, None]


def check_thresholds(cfg, user_keys):
    q = cfg.offline.quality_thresholds
    if any(b <= a for a, b in zip(q, q[1:], strict=False)):
        return f"config key 'offline.quality_thresholds': must be strictly increasing, got {list(q)}"
    return None


def check(cfg, user_keys):
    if not cfg.offline.quality_thresholds:
        return "config key 'offline.quality_thresholds': method 'sft_q' needs at least one threshold"
    return check_thresholds(cfg, user_keys)


METHOD = Method(
    name="sft_q", summary="SFT(Q): weight = number of offline.quality_thresholds the reward clears",
    source="base_samples", needs_scores=True, needs_reference=False, settings=SETTINGS, check=check,
    prepare=prepare, token_weights=token_weights,
)
