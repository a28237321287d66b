"""DFT (Wu et al., arXiv 2508.05629): each token weighted by its own detached probability.

L = -sum_t sg(pi(y_t | y_<t, x)) log pi(y_t | y_<t, x), averaged over completion tokens.
"""

from reweightlab.algos import sft
from reweightlab.math import token_probability_weights

needs_ref_logp = False
prepare = sft.prepare
step_columns = sft.step_columns


def token_weights(logp_BT, mb, ctx):
    return token_probability_weights(logp_BT) * mb.mask_BT
