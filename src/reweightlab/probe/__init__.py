"""Measuring what post-training did. This release: pass@k per variant (SPEC 3.1)."""

from reweightlab.probe.evaluate import PassKResult, evaluate_passk, default_ks

__all__ = ["PassKResult", "default_ks", "evaluate_passk"]
