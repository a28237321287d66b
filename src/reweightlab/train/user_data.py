"""The training loop's hooks for `data.path`: the file as a task, and its rows as training sequences.

Offline methods train on the file's rows (``resolved_source() == 'file'``): SFT and DFT on their
completions; filtered SFT, SFT(Q), iw-SFT and RWR on the row's score field (``reward``, ``score``
or ``quality``), or, when the rows carry none, on ``data.reward`` applied to each (prompt,
completion). RL samples the file's prompts and scores samples with ``data.reward`` through
``DatasetTask.verify_batch``, so the RL section of the loop is unchanged.

Over-long sequences (``data.max_length`` > 0, counting the prompt with its BOS and the completion
with its EOS): 'truncate' keeps the first max_length tokens (TRL's default side: the completion's
end goes; a row whose prompt alone fills max_length keeps no completion token and is dropped),
'drop' skips the row. Both are counted and logged.
"""

from __future__ import annotations

import math

from reweightlab.data.encoding import encode_completions, encode_prompts
from reweightlab.data.lengths import TooLongError, check_lengths
from reweightlab.data.store import SequenceStore
from reweightlab.tasks.dataset import DataError
from reweightlab.tasks.rewards import RewardError
from reweightlab.tasks.user_task import DatasetTask


def open_data_task(cfg, log=print) -> DatasetTask:
    """Read and check every row of data.path and load data.reward: before any model is loaded."""
    d = cfg.data
    task = DatasetTask(
        d.path, reward=d.reward or None, success_threshold=d.success_threshold, reward_timeout=d.reward_timeout,
        reward_on_error=d.reward_on_error, need_completion=cfg.resolved_source() == "file", log=log,
    )
    if cfg.resolved_source() == "file" and cfg.method_record.needs_scores and task.score_field is None:
        raise RewardError(f"method '{cfg.method}' trains on scores: the rows of {d.path} carry no "
                          "reward/score/quality field; set data.reward to sample the model on the file's prompts "
                          "and score its samples, or add a score field to the rows")
    if cfg.method_record.weight_field:  # every row checked now, before anything is written
        row_weights(task, cfg.method_record.weight_field)
    return task


def bind_tokenizer(task: DatasetTask, tokenizer, cfg) -> None:
    d = cfg.data
    room = d.max_length - d.max_new_tokens if d.max_length and cfg.resolved_source() != "file" else 0
    task.use_tokenizer(tokenizer, max_prompt_tokens=room, overlong=d.overlong, chat_template=d.chat_template)


def _limit(p_ids, c_ids, max_length: int, mode: str):
    """(prompt ids, completion ids, what happened): 'ok', 'truncated' or 'dropped'."""
    if not max_length or len(p_ids) + len(c_ids) <= max_length:
        return p_ids, c_ids, "ok"
    if mode == "drop" or len(p_ids) >= max_length:
        return None, None, "dropped"
    return p_ids, c_ids[: max_length - len(p_ids)], "truncated"


def file_store(task: DatasetTask, tokenizer, cfg, log=print, context: int | None = None) -> tuple[SequenceStore, dict]:
    """The train rows of data.path as sequences with a 'reward' column; and the over-length counts.
    ``context``: the model's context length; with no data.max_length a row over it is an error naming
    the row (before any tensor is made for it), and data.max_length may not exceed it."""
    if context is not None and cfg.data.max_length > context:
        raise TooLongError(f"config key 'data.max_length': {cfg.data.max_length} is more than the model holds "
                           f"({context} tokens, its config's context length)")
    examples = task.examples(cfg.data.variant, "train")
    prompts = [e.prompt for e in examples]
    completions = [e.completion for e in examples]
    needs_scores = cfg.method_record.needs_scores
    if needs_scores and task.score_field is None:
        rewards = task.score(prompts, completions, [e.row for e in examples])
    elif task.score_field is not None:
        rewards = [e.score for e in examples]
    else:  # demonstrations: every one counts as a success
        rewards = [task.success_score] * len(examples)
    weight_field = cfg.method_record.weight_field
    by_row = row_weights(task, weight_field) if weight_field else {}
    weights = [by_row.get(e.row, 1.0) for e in examples]
    counts = {"rows": len(examples), "truncated": 0, "dropped": 0}
    keep_p, keep_c, keep_r, keep_w = [], [], [], []
    p_ids, c_ids = encode_prompts(tokenizer, prompts), encode_completions(tokenizer, completions)
    if not cfg.data.max_length:
        check_lengths([len(p) + len(c) for p, c in zip(p_ids, c_ids, strict=True)], context,
                      lambda i: f"{task.path}:row {examples[i].row}", "prompt + completion",
                      "set data.max_length (with data.overlong=truncate or drop) or shorten the row")
    for p, c, r, w in zip(p_ids, c_ids, rewards, weights, strict=True):
        p, c, what = _limit(p, c, cfg.data.max_length, cfg.data.overlong)
        if what != "ok":
            counts[what] += 1
        if p is not None:
            keep_p.append(p)
            keep_c.append(c)
            keep_r.append(r)
            keep_w.append(w)
    held_out = len(task.select(cfg.data.variant, "test"))
    log(f"[data] {task.path}: {counts['rows']} train rows ({held_out} test rows held out); over "
        f"data.max_length={cfg.data.max_length or 'none'}: {counts['truncated']} truncated, {counts['dropped']} dropped"
        + (f"; reward errors {task.reward_counts()}" if task.runner is not None and needs_scores else ""))
    if not keep_p:
        raise RewardError(f"every train row of {task.path} is over data.max_length={cfg.data.max_length}")
    extra = {"weight_N": keep_w} if weight_field else {}
    store = SequenceStore.from_lists(keep_p, keep_c, tokenizer.pad_token_id, reward_N=keep_r, **extra)
    return store, counts


def row_weights(task: DatasetTask, field: str) -> dict[int, float]:
    """Every row's ``field`` (a method's weight_field) by row number, each a finite number >= 0; else a
    DataError naming the file, the row and what was expected."""
    out = {}
    for row_no, row in task.rows:
        value = row.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise DataError(f"{task.path}:row {row_no}: field '{field}' must be a finite number >= 0 "
                            f"(method weight), got {value!r}")
        out[row_no] = float(value)
    return out
