"""Sequential revision: episodes of up to R attempts, each after the verifier's feedback on the last.

An episode starts from the prompt. Its attempt is verified; a success ends it, a failure appends the
task's feedback (``Task.feedback``: GeneralPoints writes e.g. ``?used 1 8 11 5:``) and the model
writes the next attempt right after it, until a success or R attempts. Chu et al. (arXiv 2501.17161)
train and evaluate GeneralPoints this way.

- The episode is one sequence: prompt, attempt 1 (EOS included), feedback 1, attempt 2, ... Training
  sees exactly the context the sampler saw; loss, KL and entropy cover the attempts only (the
  feedback and the prompt carry no loss: ``loss_mask_NT``).
- Its reward is that of its last attempt (the success score for a success within R attempts), and
  its advantage is computed per episode, by the method, from the episode rewards (P x G).
- Sampling is batched across episodes; an episode that goes on keeps its KV cache and extends it by
  the feedback (``HFRolloutEngine.generate_episodes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reweightlab.data.encoding import decode_completions, encode_prompts
from reweightlab.data.episodes import episode_store
from reweightlab.data.store import SequenceStore
from reweightlab.tasks import hooks
from reweightlab.tasks.base import Verdict


@dataclass
class RevisionSamples:
    """Revision episodes of a model on problems, verified (P x G episodes, episode n = p * G + g)."""

    store: SequenceStore
    """One sequence per episode; ``reward_N`` the episode reward, ``success_N`` success within it."""
    rewards_PG: torch.Tensor
    success_PG: torch.Tensor
    """1.0 where some attempt of the episode succeeded."""
    first_success_PG: torch.Tensor
    """1.0 where the first attempt succeeded (what single-attempt sampling measures)."""
    attempts_PG: torch.Tensor
    """Attempts the episode took (1 .. R)."""
    texts: list[list[str]]
    """Each episode's attempts, as text."""
    verdicts: list[list[Verdict]]

    @property
    def attempt_tokens(self) -> int:
        """Tokens the model wrote (every attempt, EOS included)."""
        return self.store.completion_tokens()


def check_revision(task, attempts: int) -> None:
    """One clear line for what revision cannot do: fewer than one attempt, or a task without feedback."""
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"revision attempts must be an int >= 1, got {attempts!r}")
    if attempts > 1 and not hooks.has_feedback(task):
        raise hooks.NoFeedbackError(
            f"revision over {attempts} attempts needs a task with a feedback hook (the verifier's reason after a "
            f"failed attempt); task {getattr(task, 'name', task)!r} has none")


def sample_revisions(
    engine, task, problems, tokenizer, *, attempts: int, samples_per_prompt: int, max_new_tokens: int,
    temperature: float = 1.0, top_p: float = 1.0, seed: int | None = None, progress: bool = False,
    prompt_seeds: list[int] | None = None,
) -> RevisionSamples:
    """``samples_per_prompt`` revision episodes of up to ``attempts`` attempts for each problem."""
    check_revision(task, attempts)
    G = samples_per_prompt
    prompt_ids = encode_prompts(tokenizer, [p.prompt for p in problems])
    verdicts: dict[int, list[Verdict]] = {}
    texts: dict[int, list[str]] = {}

    def judge(episodes: list[int], completions: list[list[int]]) -> list[Verdict]:
        decoded = decode_completions(tokenizer, completions)
        out = hooks.verify_batch(task, [problems[e // G] for e in episodes], decoded)  # one call per batch
        for e, text, v in zip(episodes, decoded, out, strict=True):
            verdicts.setdefault(e, []).append(v)
            texts.setdefault(e, []).append(text)
        return out

    def feedback(_attempt: int, episodes: list[int], completions: list[list[int]]) -> list[list[int] | None]:
        notes = []
        for e, v in zip(episodes, judge(episodes, completions), strict=True):
            notes.append(None if v.success else hooks.feedback(task, problems[e // G], texts[e][-1], v))
        encoded = tokenizer([n for n in notes if n is not None], add_special_tokens=False)["input_ids"] \
            if any(n is not None for n in notes) else []
        it = iter(encoded)
        return [None if n is None else next(it) for n in notes]

    segments = engine.generate_episodes(
        prompt_ids, feedback, attempts=attempts, samples_per_prompt=G, max_new_tokens=max_new_tokens,
        temperature=temperature, top_p=top_p, seed=seed, progress=progress, prompt_seeds=prompt_seeds,
    )
    # the last attempt of every episode that used all R (or whose feedback ended it) is judged here
    pending = [e for e, segs in enumerate(segments) if sum(s.loss for s in segs) > len(verdicts.get(e, ()))]
    if pending:
        judge(pending, [[s for s in segments[e] if s.loss][-1].ids for e in pending])
    N = len(segments)
    last = [verdicts[e][-1] for e in range(N)]
    reward_N = torch.tensor([v.score for v in last], dtype=torch.float32)
    success_N = torch.tensor([float(v.success) for v in last])
    store = episode_store([prompt_ids[e // G] for e in range(N)], segments, tokenizer.pad_token_id,
                          reward_N=reward_N, success_N=success_N)
    P = len(problems)
    return RevisionSamples(
        store=store, rewards_PG=reward_N.view(P, G), success_PG=success_N.view(P, G),
        first_success_PG=torch.tensor([float(verdicts[e][0].success) for e in range(N)]).view(P, G),
        attempts_PG=torch.tensor([len(verdicts[e]) for e in range(N)], dtype=torch.float32).view(P, G),
        texts=[texts[e] for e in range(N)], verdicts=[verdicts[e] for e in range(N)],
    )
