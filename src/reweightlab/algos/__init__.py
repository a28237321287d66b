"""One short module per method. Each composes reweightlab.math; none knows about the loop.

An offline method is three pieces:
  prepare(store, cfg)          -> (store, draw_N or None): what to train on, and how often each
                                  sequence is drawn (None: uniformly)
  step_columns(step, ctx)      -> optional per-sequence columns needing the whole step (e.g. weights
                                  normalised over the batch)
  token_weights(logp_BT, mb, ctx) -> detached weights, shape B or BT, for -w * logp
Online RL (reinforce, rloo, grpo) lives in rl.py: advantages, then the clipped surrogate + KL.
"""

from reweightlab.algos import dft, filtered_sft, iw_sft, rl, rwr, sft, sft_q

OFFLINE = {
    "sft": sft,
    "filtered_sft": filtered_sft,
    "sft_q": sft_q,
    "iw_sft": iw_sft,
    "dft": dft,
    "rwr": rwr,
}

__all__ = ["OFFLINE", "rl"]
