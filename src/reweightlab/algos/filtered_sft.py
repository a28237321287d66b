"""Filtered SFT (rejection-sampling fine-tuning): SFT on samples with reward >= threshold."""

from reweightlab.algos import sft
from reweightlab.algos.method import Method, NothingToTrainError
from reweightlab.math import threshold_weights


def keep_filtered(store, threshold: float):
    keep = threshold_weights(store.reward_N, threshold) > 0
    if not bool(keep.any()):
        raise NothingToTrainError(
            f"no sample reaches the reward threshold {threshold}: nothing to train on "
            "(sample more per prompt, or lower offline.threshold)"
        )
    return store.select(keep.nonzero().squeeze(1))


def prepare(store, offline):
    return keep_filtered(store, offline.threshold), None


METHOD = Method(
    name="filtered_sft", summary="SFT on the reference's samples whose reward >= offline.threshold",
    source="base_samples", needs_scores=True, needs_reference=False, settings=("offline.threshold",),
    prepare=prepare, token_weights=sft.token_weights,
)
