"""Filtered SFT (rejection-sampling fine-tuning): SFT on samples with reward >= threshold."""

from reweightlab.algos import sft
from reweightlab.math import threshold_weights

needs_ref_logp = False


def keep_filtered(store, threshold: float):
    keep = threshold_weights(store.columns["reward"], threshold) > 0
    if not bool(keep.any()):
        raise RuntimeError(
            f"no sample reaches the reward threshold {threshold}: nothing to train on "
            "(sample more per prompt, or lower offline.threshold)"
        )
    return store.select(keep.nonzero().squeeze(1))


def prepare(store, cfg):
    return keep_filtered(store, cfg.offline.threshold), None


step_columns = sft.step_columns
token_weights = sft.token_weights
