"""SFT: every demonstration token has weight 1."""

from reweightlab.algos.method import Method
from reweightlab.math import unit_weights


def keep_all(store, offline):
    return store, None


def token_weights(logp_BT, mb, ctx):
    return unit_weights(mb.mask_BT)


METHOD = Method(
    name="sft", summary="supervised fine-tuning on demonstrations (every token weight 1)",
    source="solver", needs_scores=False, needs_reference=False,
    prepare=keep_all, token_weights=token_weights,
)
