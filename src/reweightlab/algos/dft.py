"""DFT (Wu et al., arXiv 2508.05629): each token weighted by its own detached probability.

L = -sum_t sg(pi(y_t | y_<t, x)) log pi(y_t | y_<t, x), averaged over completion tokens.
"""

from reweightlab.algos.method import Method
from reweightlab.algos.sft import keep_all
from reweightlab.math import token_probability_weights


def token_weights(logp_BT, mb, ctx):
    return token_probability_weights(logp_BT) * mb.mask_BT


METHOD = Method(
    name="dft", summary="dynamic fine-tuning: each demonstration token weighted by its own probability",
    source="solver", needs_scores=False, needs_reference=False,
    prepare=keep_all, token_weights=token_weights,
)
