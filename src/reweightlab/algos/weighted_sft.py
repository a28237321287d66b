"""Weighted SFT: each row of a data file carries its own weight, a number >= 0 in its ``weight`` field.

L = -sum_t w_row * log pi(y_t | y_<t, x), reduced like SFT. With every weight 1 this is SFT exactly;
a weight of 0 removes a row's gradient (it still counts in a token-mean's denominator).
"""

from reweightlab.algos.method import Method
from reweightlab.algos.sft import keep_all


def token_weights(logp_BT, mb, ctx):
    return mb.weight_B[:, None] * mb.mask_BT


METHOD = Method(
    name="weighted_sft", summary="SFT with a weight per row, from the data file's 'weight' field",
    source="file", needs_scores=False, needs_reference=False, weight_field="weight",
    prepare=keep_all, token_weights=token_weights,
)
