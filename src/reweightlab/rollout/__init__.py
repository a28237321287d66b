"""Sampling completions with the sampler's own log-probs: the RolloutEngine protocol and the HF engine."""

from reweightlab.rollout.engine import Rollout, RolloutEngine
from reweightlab.rollout.hf import HFRolloutEngine, sample_from_logits

__all__ = ["HFRolloutEngine", "Rollout", "RolloutEngine", "sample_from_logits"]
