"""The record that describes a training method, once, in its own file.

Every method module in algos/ exports ``METHOD``, a ``Method``. The configuration derives from these
records the allowed ``method`` values, which settings each method reads (a setting the chosen
method never reads is an error), where its data comes from, and its own checks; the loop derives
whether it needs reference log-probs or an EMA copy of the policy. Adding an offline method is one
new file here (and its test): nothing else lists the methods.

An offline method is three functions:
  prepare(store, offline) -> (store, draw_N or None): what to train on, and how often each sequence
                             is drawn (None: uniformly)
  step_weights(step, ctx) -> the step's ``step_weight_N`` (weights that need the whole optimizer
                             step, e.g. normalised over it), or None
  token_weights(logp_BT, mb, ctx) -> detached weights, shape B x T (zero off the completion), for
                             the weighted NLL  -w * logp
An online (RL) method is an advantage estimator; the loss is the clipped surrogate plus KL (rl.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Source = Literal["solver", "base_samples", "search", "file", "online"]


def no_step_weights(step, ctx) -> None:
    return None


def no_check(cfg, user_keys: set[str]) -> str | None:
    return None


def no_ema(offline) -> float | None:
    return None


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    """One line for `reweightlab train --help-config` and the docs."""
    source: Source
    """Where its training sequences come from when there is no data file: 'solver' demonstrations,
    'base_samples' (scored samples of the reference), 'search' (the reference's sampled successes plus
    what the verifier-guided search finds where sampling failed), 'file' (only a data file's rows:
    data.path is required), or 'online' (RL: its own samples)."""
    needs_scores: bool
    """Trains on a reward per sequence (reward_N): a data file's score field, or data.reward."""
    needs_reference: bool
    """Needs logp_ref_NT of its training sequences (computed once per dataset, or once per RL batch)."""
    settings: tuple[str, ...] = ()
    """The config keys it reads beyond the common ones (``offline.threshold``; ``rl`` for a section)."""
    ema_decay: Callable[[Any], float | None] = no_ema
    """Needs q, an EMA copy of the policy: its decay given the offline settings, or None (no copy)."""
    weight_field: str | None = None
    """A numeric field of each data-file row that becomes weight_N (such a method needs data.path)."""
    check: Callable[[Any, set[str]], str | None] = no_check
    """Its own checks of a whole config: a one-line problem naming the key, or None."""
    prepare: Callable | None = None
    step_weights: Callable = no_step_weights
    token_weights: Callable | None = None
    advantages: Callable | None = None
    """RL only: (rewards_PG, std_scaling) -> advantages, shape P x G."""
    auto_std_scaling: str = "none"
    """RL only: the advantage std scaling that rl.adv_std = auto means for this method."""

    @property
    def is_rl(self) -> bool:
        return self.source == "online"

    def __post_init__(self) -> None:
        offline = (self.prepare, self.token_weights)
        if self.is_rl != (self.advantages is not None) or (not self.is_rl and None in offline):
            raise ValueError(f"method {self.name!r}: an offline method needs prepare and token_weights, "
                             "an online one (source='online') needs advantages, and not both")


class NothingToTrainError(ValueError):
    """The method's data is empty after its filter (no sample reaches the threshold): one line, exit 2."""

