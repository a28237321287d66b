"""Measuring what post-training did (SPEC 3).

evaluate      pass@k of a model on held-out prompts, per-prompt (n, c)
passk_stats   pass@k curves, bootstrap intervals over prompts, the crossover k*
likelihood    p_known: probability of the task's enumerated solutions (teacher-forced)
regimes       basin / tail / barrier / singularity with named thresholds
distance      exact per-token KL(trained || base), k1/k3 estimates, base likelihood of successes
gap           free-energy gap F_beta[trained] - F* per prompt
"""

from reweightlab.probe.evaluate import PassKResult, default_ks, evaluate_passk

__all__ = ["PassKResult", "default_ks", "evaluate_passk"]
