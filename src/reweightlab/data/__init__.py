"""Sequences as tensors: stores, length-bucketed micro-batches, and the encoding of prompts and completions.

Nothing here runs a model."""
