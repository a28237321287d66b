"""A reward function for `data.reward` / `--reward`: examples/own_data/reward.py:correct_sum.

Signature: (prompts, completions, **columns) -> list of floats, one per completion. Each row's
other fields arrive as keyword arguments holding one value per completion (here `answer`).
"""


def correct_sum(prompts: list[str], completions: list[str], answer: list[str], **columns) -> list[float]:
    return [1.0 if c.strip() == a else 0.0 for c, a in zip(completions, answer, strict=True)]
