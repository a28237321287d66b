"""Reward-weighted regression: weight exp(r / beta), normalised over the optimizer step's batch."""

from reweightlab.algos import sft
from reweightlab.math import rwr_weights

needs_ref_logp = False
prepare = sft.prepare


def step_columns(step, ctx):
    # normalised over the whole step (not a micro-batch) so accumulation does not change the weights
    return {"rwr_weight": rwr_weights(step.columns["reward"], ctx.cfg.offline.rwr_beta)}


def token_weights(logp_BT, mb, ctx):
    return mb.columns["rwr_weight"][:, None] * mb.mask_BT
