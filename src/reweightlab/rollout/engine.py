"""The rollout interface: what any sampler hands to training and probing.

A `Rollout` holds `N = P * G` sampled completions, sequence `n = p * G + g` being sample `g` of prompt
`p`. Next to the tokens it keeps the *sampler's* log-probabilities, so that RL can form importance
ratios against the policy that actually produced the data (`log_ratio = logp - logp_old`) without a
second forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass
class Rollout:
    """N sampled completions, right-padded to a common length T (CPU tensors).

    Invariants: on padding, `completion_ids_NT == pad_token_id`, `completion_mask_NT` is False and
    `logp_NT == 0.0`; the mask of each row is a prefix of True values (completion tokens never follow
    padding); a finished row's last real token is EOS.
    """

    prompt_index_N: torch.Tensor
    """int64 [N]: index of the prompt each sequence came from (sequence n = p * G + g)."""
    completion_ids_NT: torch.Tensor
    """int64 [N, T]: sampled tokens, right-padded with the pad id; includes EOS where one was produced."""
    completion_mask_NT: torch.Tensor
    """bool [N, T]: True on real completion tokens (EOS included), False on padding."""
    logp_NT: torch.Tensor
    """float32 [N, T]: log-prob of each token under the distribution it was sampled from (after
    temperature and top-p renormalisation); 0.0 on padding."""
    finished_N: torch.Tensor
    """bool [N]: True if the sequence ended with EOS, False if it hit max_new_tokens."""

    def __post_init__(self) -> None:
        n, t = self.completion_ids_NT.shape
        if self.prompt_index_N.shape != (n,) or self.finished_N.shape != (n,):
            raise ValueError(
                f"prompt_index_N {tuple(self.prompt_index_N.shape)} and finished_N "
                f"{tuple(self.finished_N.shape)} must both have shape ({n},)"
            )
        if self.completion_mask_NT.shape != (n, t) or self.logp_NT.shape != (n, t):
            raise ValueError(
                f"completion_mask_NT {tuple(self.completion_mask_NT.shape)} and logp_NT "
                f"{tuple(self.logp_NT.shape)} must both have shape ({n}, {t})"
            )

    @property
    def lengths_N(self) -> torch.Tensor:
        """int64 [N]: completion lengths in tokens (EOS included)."""
        return self.completion_mask_NT.sum(dim=-1)

    @property
    def num_sequences(self) -> int:
        return self.completion_ids_NT.shape[0]

    def completions_as_lists(self) -> list[list[int]]:
        """Token ids per sequence without padding (EOS kept), e.g. for `tokenizer.batch_decode`."""
        rows = self.completion_ids_NT.tolist()
        return [row[:length] for row, length in zip(rows, self.lengths_N.tolist(), strict=True)]


@runtime_checkable
class RolloutEngine(Protocol):
    """Anything that samples completions for token-id prompts and reports its own log-probs."""

    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        *,
        samples_per_prompt: int = 1,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        progress: bool = False,
        prompt_seeds: Sequence[int] | None = None,
    ) -> Rollout:
        """Sample `samples_per_prompt` completions of every prompt; same seed -> same Rollout.

        `prompt_seeds` (one per prompt, instead of `seed`): prompt p's samples depend only on its seed.
        """
        ...
