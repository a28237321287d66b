"""Measuring what post-training did.

evaluate      pass@k of a model on held-out prompts, per-prompt (n, c)
passk_stats   pass@k curves, bootstrap intervals over prompts, the crossover k*
likelihood    p_known: probability of the task's enumerated solutions (teacher-forced)
regimes       basin / tail / barrier / singularity with named thresholds
distance      exact per-token KL(trained || base), k1/k3 estimates, base likelihood of successes
gap           free-energy gap F_beta[trained] - F* per prompt (standalone, samples both models)
search        verifier-guided beam search over a model's own distribution (barrier evidence)
elicitation   regime transitions, pass@1 gain by base regime, support shrinkage, coverage
sampling      many samples per prompt in bounded chunks: counts, rewards, a kept subset of sequences
study         everything measured per model and per trained model against the base
command       `reweightlab probe`: load, check, run study, write probe.json + probe_prompts.jsonl
"""

from reweightlab.probe.evaluate import PassKResult, default_ks, evaluate_passk

__all__ = ["PassKResult", "default_ks", "evaluate_passk"]
