"""Measuring what post-training did.

evaluate      pass@k of a model on held-out prompts, per-prompt (n, c)
passk_stats   pass@k curves, bootstrap intervals over prompts, the crossover k*
sampling      many samples per prompt in bounded chunks: counts, rewards, solution keys, a kept subset
likelihood    p_known: probability of the task's enumerated solutions (teacher-forced, shared prefixes)
regimes       basin / tail / barrier / singularity with named thresholds, and the evidence behind each
elicitation   regime transitions (elicitation vs creation labels)
support       support change at the prompt and the solution level (P/E/S, SRR/NDR/SDS/NSCR), diversity
distance      exact per-token KL both ways, k1/k3 estimates, base likelihood of successes
gap           the free-energy gap F_beta - F* per prompt, between and within reward classes
intervals     paired bootstrap resamples of prompts shared by every figure of a comparison
compare       a trained model against the base: every difference with its interval
study         the settings, and everything measured per model
outputs       the typed rows and summary written to probe.json and probe_prompts.jsonl
command       `reweightlab probe`: load, check, run the study, write the files
"""

from reweightlab.probe.evaluate import PassKResult, default_ks, evaluate_passk

__all__ = ["PassKResult", "default_ks", "evaluate_passk"]
