"""Reward-weighted regression: weight exp(r / beta), normalised over the optimizer step's batch."""

from reweightlab.algos.method import Method
from reweightlab.algos.sft import keep_all
from reweightlab.math import rwr_weights


def step_weights(step, ctx):
    # normalised over the whole step (not a micro-batch) so accumulation does not change the weights
    return rwr_weights(step.reward_N, ctx.offline.rwr_beta)


def token_weights(logp_BT, mb, ctx):
    return mb.step_weight_B[:, None] * mb.mask_BT


METHOD = Method(
    name="rwr", summary="reward-weighted regression: weight exp(r / offline.rwr_beta), normalised over the step",
    source="base_samples", needs_scores=True, needs_reference=False, settings=("offline.rwr_beta",),
    prepare=keep_all, step_weights=step_weights, token_weights=token_weights,
)
