"""A user's data file as a Task: problems from its rows, verified by a reward function.

``DatasetTask`` meets the ``Task`` protocol, so the training loop (RL prompts, base samples) and
the probe use it unchanged. Choices (documented in the README):

- Variants: the values of a ``variant`` field, else one variant named ``id`` (the default of
  ``data.variant`` and ``probe --variant``).
- Splits: a ``split`` field ("train"/"test"), else a deterministic hash of the prompt sends
  ``test_fraction`` (10%) of the prompts to test; equal prompts always land in the same split.
- ``problems(variant, split, n, seed)`` returns at most ``n`` rows (a seeded sample, in file order
  when fewer than all), one problem per row.
- ``verify``: the reward function's score; success = score >= ``success_threshold`` (default 1.0,
  the built-ins' maximum). ``success_score`` is that threshold.
- ``solutions(problem)``: the row's ``solutions``/``solution``, else its completion (rendered like
  training data), else its ``answer``; None when the row has none: then the probe uses the sampling
  estimator only.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from reweightlab.tasks.base import Problem, Verdict
from reweightlab.tasks.dataset import (
    DataError,
    read_rows,
    reference_solutions,
    reward_columns,
    validate_rows,
)
from reweightlab.tasks.formatting import Formatter, is_conversation, split_conversation
from reweightlab.tasks.registry import get_task
from reweightlab.tasks.rewards import RewardError, RewardRunner
from reweightlab.tasks.rewards.builtins import text_of

DATA_SUFFIXES = (".jsonl", ".json", ".parquet")


@dataclass(frozen=True)
class Example:
    """A training row, rendered: prompt and completion texts, its score (or None), its row number."""

    prompt: str
    completion: str
    score: float | None
    row: int


class DatasetTask:
    """A Task over a JSONL/Parquet file (module docstring)."""

    max_completion_chars = 4096

    def __init__(self, path, *, reward=None, tokenizer=None, success_threshold: float = 1.0,
                 reward_timeout: float = 30.0, reward_on_error: float = 0.0, test_fraction: float = 0.1,
                 need_completion: bool = False, log=None):
        self.path = Path(path)
        self.name = self.path.name
        self.rows = read_rows(self.path)
        self.score_field = validate_rows(self.path, self.rows, need_completion=need_completion)
        self.success_score = float(success_threshold)
        self.test_fraction = test_fraction
        self.formatter = Formatter(tokenizer)
        self.max_prompt_tokens, self.overlong = 0, "truncate"
        self.prompt_overlong = {"truncated": 0, "dropped": 0}
        self.runner = None
        self.log = log
        if reward is not None:
            self.runner = RewardRunner(reward, timeout=reward_timeout, on_error=reward_on_error, log=log)
        self._by_row = dict(self.rows)
        self._check_builtin_fields(reward)
        self.variants = tuple(sorted({r["variant"] for _, r in self.rows if r.get("variant")})) or ("id",)

    def _check_builtin_fields(self, reward) -> None:
        if not isinstance(reward, str):
            return
        head = reward.partition(":")[0]
        if head in ("exact_match", "numeric_match", "math_verify"):
            for row_no, row in self.rows:
                if row.get("answer") is None and row.get("solution") is None:
                    raise DataError(f"{self.path}:row {row_no}: field 'answer' is missing "
                                    f"(reward '{head}' compares with 'answer' or 'solution')")
        if reward == "regex":
            for row_no, row in self.rows:
                if not isinstance(row.get("pattern"), str):
                    raise DataError(f"{self.path}:row {row_no}: field 'pattern' is missing "
                                    "(reward 'regex' without ':PATTERN' reads each row's pattern)")

    def use_tokenizer(self, tokenizer, *, max_prompt_tokens: int = 0, overlong: str = "truncate",
                      chat_template: str = "auto") -> None:
        """Render with this tokenizer (``chat_template``: see tasks.formatting); prompts over
        max_prompt_tokens (0: no limit) are cut or dropped."""
        self.formatter = Formatter(tokenizer, chat_template)
        self.max_prompt_tokens, self.overlong = max_prompt_tokens, overlong

    # ---- rows -----------------------------------------------------------------------------------
    def _where(self, row_no: int) -> str:
        return f"{self.path}:row {row_no}"

    def _split_of(self, row: dict) -> str:
        if row.get("split") is not None:
            return row["split"]
        key = json.dumps(row.get("messages", row.get("prompt")), sort_keys=True)
        if "messages" in row and row["messages"][-1]["role"] == "assistant":
            key = json.dumps(row["messages"][:-1], sort_keys=True)
        h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
        return "test" if h < self.test_fraction else "train"

    def select(self, variant: str, split: str) -> list[tuple[int, dict]]:
        if variant not in self.variants:
            raise DataError(f"data file {self.path} has no variant {variant!r}; it has {list(self.variants)}")
        return [(n, r) for n, r in self.rows
                if r.get("variant", "id") in (variant, None) and self._split_of(r) == split]

    def split_sizes(self, variant: str) -> dict[str, int]:
        return {s: len(self.select(variant, s)) for s in ("train", "test")}

    # ---- the Task protocol ------------------------------------------------------------------------
    def problems(self, variant: str, split: str, n: int, seed: int) -> list[Problem]:
        rows = self.select(variant, split)
        if not rows:
            raise DataError(f"data file {self.path} has no {split} rows of variant {variant!r} "
                            f"(splits: {self.split_sizes(variant)}; a 'split' field chooses them)")
        if n < len(rows):
            keep = sorted(random.Random(seed).sample(range(len(rows)), n))
            rows = [rows[i] for i in keep]
        out, before = [], dict(self.prompt_overlong)
        for row_no, row in rows:
            prompt = self._limit_prompt(self.formatter.render(row, self._where(row_no)).prompt)
            if prompt is not None:
                out.append(Problem(id=f"{self.path.stem}:{row_no}", prompt=prompt, variant=variant, split=split,
                                   extra={"row": row_no}))
        if self.prompt_overlong != before and self.log is not None:
            self.log(f"[data] {self.path}: prompts over {self.max_prompt_tokens} tokens (data.max_length - "
                     f"data.max_new_tokens): {self.prompt_overlong['truncated'] - before['truncated']} truncated "
                     f"(start cut), {self.prompt_overlong['dropped'] - before['dropped']} dropped")
        if not out:
            raise DataError(f"data file {self.path}: every {split} prompt is longer than data.max_length allows")
        return out

    def _limit_prompt(self, prompt: str) -> str | None:
        if not self.max_prompt_tokens:
            return prompt
        tok = self.formatter.tokenizer
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        if len(ids) <= self.max_prompt_tokens:
            return prompt
        if self.overlong == "drop":
            self.prompt_overlong["dropped"] += 1
            return None
        self.prompt_overlong["truncated"] += 1  # keep the end: the question sits at the end of a prompt
        return tok.decode(ids[-self.max_prompt_tokens:], skip_special_tokens=False)

    def verify(self, problem: Problem, completion: str) -> Verdict:
        return self.verify_batch([problem], [completion])[0]

    takes_completion_ids = True  # hooks.verify_batch passes the sampled tokens

    def verify_batch(self, problems: list[Problem], completions: list[str],
                     completion_ids: list[list[int]] | None = None) -> list[Verdict]:
        """One call of the reward function for a whole batch (the TRL signature is batched)."""
        scores = self.score([p.prompt for p in problems], completions, [p.get("row") for p in problems],
                            completion_ids=completion_ids)
        return [Verdict(s, s >= self.success_score, f"reward {s:g}") for s in scores]

    def score(self, prompts: list[str], completions: list[str], row_numbers: list[int],
              completion_ids: list[list[int]] | None = None) -> list[float]:
        """The reward function's scores, called TRL's way: a conversational row's prompt as its message
        list and its completion as ``[{"role": "assistant", "content": text}]``; ``completion_ids`` the
        sampled tokens (re-encoded from the text when the caller has none and the function takes them)."""
        if self.runner is None:
            raise RewardError(f"scoring samples on {self.path} needs a reward function (data.reward or --reward)")
        names = sorted({k for n in row_numbers for k in reward_columns(self._by_row[n])})
        columns = {k: [self._by_row[n].get(k) for n in row_numbers] for k in names}
        rows = [self._by_row[n] for n in row_numbers]
        if any(is_conversation(r.get("messages", r.get("prompt"))) for r in rows):
            prompts = [split_conversation(r)[0] if is_conversation(r.get("messages", r.get("prompt"))) else p
                       for r, p in zip(rows, prompts, strict=True)]
            completions = [[{"role": "assistant", "content": c}]
                           if is_conversation(r.get("messages", r.get("prompt"))) else c
                           for r, c in zip(rows, completions, strict=True)]
        accepts = self.runner.accepts
        if completion_ids is None and (accepts is None or "completion_ids" in accepts) \
                and self.formatter.tokenizer is not None:
            completion_ids = self.formatter.tokenizer([text_of(c) for c in completions],
                                                      add_special_tokens=False)["input_ids"]
        return self.runner(prompts, completions, columns, completion_ids=completion_ids)

    def solutions(self, problem: Problem) -> list[str] | None:
        row_no = problem.get("row")
        row = self._by_row[row_no]
        refs = reference_solutions(row)
        if refs is None:
            completion = self.formatter.render(row, self._where(row_no)).completion
            if completion is not None:
                refs = [completion]
            elif row.get("answer") is not None:
                refs = [str(row["answer"])]
        return None if refs is None else list(dict.fromkeys(refs))

    # ---- offline training ---------------------------------------------------------------------------
    def examples(self, variant: str, split: str = "train") -> list[Example]:
        rows = self.select(variant, split)
        if not rows:
            raise DataError(f"data file {self.path} has no {split} rows of variant {variant!r}")
        out = []
        for row_no, row in rows:
            r = self.formatter.render(row, self._where(row_no))
            if r.completion is None:
                raise DataError(f"{self._where(row_no)}: field 'completion' is missing (training needs one)")
            score = float(row[self.score_field]) if self.score_field else None
            out.append(Example(r.prompt, r.completion, score, row_no))
        return out

    def reward_counts(self) -> dict[str, int]:
        """Samples scored reward_on_error since the last call (for per-step metrics)."""
        return self.runner.take_counts() if self.runner is not None else {}

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()


def is_data_file(task: str) -> bool:
    return Path(task).suffix.lower() in DATA_SUFFIXES


def resolve_task(task: str, reward: str | None = None, **kwargs):
    """A registered task by name, or a DatasetTask when `task` is a .jsonl/.parquet path (needs `reward`)."""
    if not is_data_file(task):
        if reward:
            raise RewardError(
                f"--reward applies to a data file task (.jsonl/.parquet); task {task!r} has its own verifier"
            )
        return get_task(task)
    if not reward:
        raise RewardError(f"task {task} is a data file: name a reward function to verify samples "
                          "(--reward module:function or a built-in such as exact_match)")
    return DatasetTask(task, reward=reward, **kwargs)
