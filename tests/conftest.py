"""Shared fixtures: tiny models built in-process and saved like any Hugging Face folder."""

from __future__ import annotations

import pytest
import torch

torch.set_flush_denormal(True)
# The tests' models are tiny: a second thread buys nothing, and under load two OpenMP threads were
# measured 5-10x slower than one on this 2-core machine (spin-waiting on a busy core).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A ~30k-parameter Llama with the character tokenizer, saved with save_pretrained."""
    from reweightlab.models import EmbeddedSpec, build_char_tokenizer, build_embedded_model

    tok = build_char_tokenizer()
    spec = EmbeddedSpec(hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64, max_positions=96)
    model = build_embedded_model(tok, spec, seed=0)
    path = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


class DigitsTask:
    """A toy task for loop tests: reward = fraction of digit characters, so even a random model's
    samples get varied rewards (GeneralPoints would score every sample of an untrained model -3)."""

    name = "digits"
    variants = ("id",)
    success_score = 1.0
    max_completion_chars = 16

    def problems(self, variant, split, n, seed):
        from reweightlab.tasks import Problem

        return [Problem(id=f"d-{seed}-{i}", prompt=f"{i % 10}:", variant=variant, split=split) for i in range(n)]

    def verify(self, problem, completion):
        from reweightlab.tasks import Verdict

        if not completion:
            return Verdict(0.0, False, "empty")
        score = sum(ch in "0123456789" for ch in completion) / len(completion)
        return Verdict(score, score == 1.0, f"{score:.2f} digits")

    def solutions(self, problem):
        return ["1", "22", "333"]


def _register_digits():
    from reweightlab.tasks import register_task

    register_task("digits", DigitsTask, replace=True)


_register_digits()
