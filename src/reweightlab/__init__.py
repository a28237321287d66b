"""reweightlab: SFT and RL as one family of reweighted log-likelihood objectives.

Subpackages: math (pure tensor functions), algos (one file per method), tasks, models, rollout,
train (the loop), probe (what post-training did), report. See README.md.
"""

__version__ = "0.1.0"
