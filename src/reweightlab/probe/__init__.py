"""Measuring what post-training did. This release: pass@k per variant (SPEC 3.1)."""

from reweightlab.probe.evaluate import PassKResult, default_ks, evaluate_passk

__all__ = ["PassKResult", "default_ks", "evaluate_passk"]
