"""SFT: every demonstration token has weight 1."""

from reweightlab.math import unit_weights

needs_ref_logp = False


def prepare(store, cfg):
    return store, None


def step_columns(step, ctx):
    return {}


def token_weights(logp_BT, mb, ctx):
    return unit_weights(mb.mask_BT)
