"""Reward functions for `data.reward` / `--reward`, written the way TRL calls them: by keyword, with
`completions` and each row's other fields (here `answer`) as lists holding one value per completion,
the rest (`prompts`, `completion_ids`, ...) in `**kwargs`. Each returns one float per completion.

- `correct_sum`: 1 for the exact sum, else 0 (what the probe counts as a success);
- `close_sum`: graded, 1 / (1 + |completion - answer|) for a number, 0 otherwise. A model that is
  rarely exact still gets samples that score differently, which GRPO needs: its advantage is a
  sample's reward against the others for the same prompt, and a group that scores alike teaches nothing.
"""


def correct_sum(completions: list[str], answer: list[str], **kwargs) -> list[float]:
    return [1.0 if c.strip() == a else 0.0 for c, a in zip(completions, answer, strict=True)]


def close_sum(completions: list[str], answer: list[str], **kwargs) -> list[float]:
    out = []
    for c, a in zip(completions, answer, strict=True):
        try:
            out.append(1.0 / (1.0 + abs(int(c.strip()) - int(a))))
        except ValueError:
            out.append(0.0)
    return out
