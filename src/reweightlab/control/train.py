"""BC, SFT (BC on the top 10%), SFT(Q) and iw-SFT(Q) on offline trajectories.

Every method is the same weighted log-likelihood ``-w * log pi(a|s)``; only the trajectories it draws
and their weights differ, and both come from ``reweightlab.math``, the functions the language-model
methods use (``threshold_weights``; ``percentile_thresholds`` -> ``quality_levels`` ->
``quality_multiset_indices``; ``importance_weights`` with ``IW_PRESETS["control"]``, ``scale_to_count``,
and ``ema_update_`` for its q):

| method   | trajectories drawn                          | weight                                          |
|----------|---------------------------------------------|-------------------------------------------------|
| bc       | all, uniformly                              | 1                                               |
| sft      | the top ``top_fraction`` by return          | 1                                               |
| sft_q    | the 90/95/98-percentile multiset | 1                                               |
| iw_sft_q | the same multiset                           | ``B * w_b``, ``w_b`` self-normalised over batch |

A step draws ``trajectories_per_step`` whole trajectories from the method's pool, then estimates the
token-mean loss over all of their transitions from ``transitions_per_step`` transitions drawn uniformly
among them (our choice: a full pass over 256 trajectories of up to 1,000 steps would not fit a CPU
budget; the estimate is unbiased). The iw weight of a trajectory uses all of its steps: ``pi_ref``'s
log-probs are cached once (it is frozen), ``q``'s come from a no-grad pass of the EMA policy over the
pool's trajectories (every ``iw_refresh_every`` steps: a trade of exactness for time, see there).
BC is ``pi_ref`` and the initialisation of the other three.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from reweightlab import math as rmath
from reweightlab.config import ConfigError, setting
from reweightlab.control.dataset import Trajectories
from reweightlab.control.policy import GaussianMLPPolicy

METHODS = ("bc", "sft", "sft_q", "iw_sft_q")


# iw-SFT(Q) weighs whole trajectories: only the sequence-level presets give one weight per trajectory
SEQUENCE_PRESETS = tuple(name for name, p in rmath.IW_PRESETS.items() if p.level == "sequence")


@dataclass(frozen=True)
class TrainSettings:
    """How every method trains: config keys and flags of `reweightlab control run` (reweightlab.config)."""

    steps: int = setting(1000, "Adam steps per method (BC from scratch; the others from BC)")
    trajectories_per_step: int = setting(256, "whole trajectories drawn per step")
    transitions_per_step: int = setting(1024, "transitions sampled uniformly from those trajectories for the loss")
    lr: float = setting(3e-4, "Adam learning rate (our choice; the same for every method)")
    top_fraction: float = setting(0.1, "SFT keeps this share of trajectories, ranked by return")
    percentiles: tuple[float, ...] = setting((90.0, 95.0, 98.0), "SFT(Q): quality bins at these return percentiles")
    iw_preset: str = setting("control", "iw-SFT(Q)'s preset in reweightlab.math.IW_PRESETS", choices=SEQUENCE_PRESETS)
    hidden: int = setting(256, "width of the policy's 3 hidden layers")
    # 1 is exact; our default 10 (q up to 9 steps staler than the EMA, about its own memory at decay 0.9)
    # cut iw-SFT(Q)'s step on Hopper-v5 from ~0.5 s (a no-grad pass over ~30k transitions) to about a
    # plain step's cost.
    iw_refresh_every: int = setting(10, "iw-SFT(Q): recompute q's log-probs every this many steps (1 is exact)")

    def __post_init__(self) -> None:
        # ConfigError (a ValueError) naming the key: the CLI prints it as one line
        for name in ("steps", "trajectories_per_step", "transitions_per_step", "hidden", "iw_refresh_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"config key '{name}': must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.top_fraction <= 1.0:
            raise ConfigError(f"config key 'top_fraction': must lie in (0, 1], got {self.top_fraction}")
        ps = list(self.percentiles)
        if not ps or any(not 0.0 <= p <= 100.0 for p in ps) or any(a >= b for a, b in zip(ps, ps[1:], strict=False)):
            raise ConfigError(f"config key 'percentiles': must be increasing values in [0, 100], got {ps}")
        if self.iw_preset not in SEQUENCE_PRESETS:  # build() checks this too; a direct call does not
            raise ConfigError(f"config key 'iw_preset': {self.iw_preset!r} is not one of {', '.join(SEQUENCE_PRESETS)} "
                              "(the sequence-level presets: one weight per trajectory)")


class EpisodeTable:
    """The dataset as torch tensors plus per-episode offsets, lengths and returns."""

    def __init__(self, data: Trajectories) -> None:
        self.obs_NO = torch.from_numpy(data.obs_NO)
        self.act_NA = torch.from_numpy(data.act_NA)
        bounds_E2 = torch.from_numpy(data.bounds_E2)
        self.first_E = bounds_E2[:, 0]
        self.len_E = bounds_E2[:, 1] - bounds_E2[:, 0]
        self.returns_E = torch.from_numpy(data.returns_E)  # float64

    @property
    def episodes(self) -> int:
        return len(self.len_E)


# --- which trajectories each method draws (all through reweightlab.math) -------------------------------


def top_fraction_pool(returns_E: torch.Tensor, fraction: float) -> torch.Tensor:
    """Indices of the top ``fraction`` of trajectories by return: ``threshold_weights`` at the k-th
    largest return, ``k = max(1, round(fraction * E))`` (ties at the threshold are all kept)."""
    k = max(1, round(fraction * len(returns_E)))
    threshold = float(torch.topk(returns_E, k).values[-1])
    return (rmath.threshold_weights(returns_E, threshold) > 0).nonzero().squeeze(1)


def quality_pool(returns_E: torch.Tensor, percentiles) -> torch.Tensor:
    """SFT(Q) multiset: a trajectory above the 98th percentile appears 3 times, above the
    95th twice, above the 90th once."""
    thresholds = rmath.percentile_thresholds(returns_E, percentiles)
    levels_E = rmath.quality_levels(returns_E, thresholds)
    return rmath.quality_multiset_indices(levels_E)


def method_pool(method: str, table: EpisodeTable, s: TrainSettings) -> torch.Tensor:
    if method == "bc":
        return torch.arange(table.episodes)
    if method == "sft":
        return top_fraction_pool(table.returns_E, s.top_fraction)
    if method in ("sft_q", "iw_sft_q"):
        return quality_pool(table.returns_E, s.percentiles)
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")


# --- iw-SFT(Q) weights ---------------------------------------------------------------------------------


def _padded(values_N: torch.Tensor, first_U: torch.Tensor, len_U: torch.Tensor) -> torch.Tensor:
    """[U, Tmax] rows of per-transition values of U episodes, zero-padded (the mask marks real steps)."""
    rows = [values_N[f:f + n] for f, n in zip(first_U.tolist(), len_U.tolist(), strict=True)]
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)


def iw_batch_weights(logp_q_N: torch.Tensor, logp_ref_N: torch.Tensor, table: EpisodeTable,
                     ep_B: torch.Tensor, preset: rmath.IWPreset) -> torch.Tensor:
    """Self-normalised sequence weights ``w_b`` for a batch of episode indices (duplicates allowed), [B].

    ``rho_bt = log q(a_t|s_t) - log pi_ref(a_t|s_t)`` over every step of trajectory b (per-transition
    log-probs of the whole dataset in, only the batch's episodes read), then ``rmath.importance_weights``
    with the preset's knobs. The self-normalisation runs over the B drawn entries, so a trajectory
    drawn twice takes two shares, as it does in the loss.
    """
    uniq_U, inv_B = torch.unique(ep_B, return_inverse=True)
    first_U, len_U = table.first_E[uniq_U], table.len_E[uniq_U]
    logp_q_UT = _padded(logp_q_N, first_U, len_U)
    logp_ref_UT = _padded(logp_ref_N, first_U, len_U)
    mask_UT = torch.arange(logp_q_UT.shape[1])[None, :] < len_U[:, None]
    return rmath.importance_weights(logp_q_UT[inv_B], logp_ref_UT[inv_B], mask_UT[inv_B],
                                    **preset.weight_kwargs())


def episode_steps(table: EpisodeTable, ep_U: torch.Tensor) -> torch.Tensor:
    """Indices of every transition of the given episodes, concatenated."""
    return torch.cat([torch.arange(f, f + n) for f, n in
                      zip(table.first_E[ep_U].tolist(), table.len_E[ep_U].tolist(), strict=True)])


@torch.no_grad()
def all_log_probs(policy: GaussianMLPPolicy, table: EpisodeTable, chunk: int = 65536) -> torch.Tensor:
    """``log pi(a|s)`` for every transition of the dataset, [N] (pi_ref's cache)."""
    return torch.cat([policy.log_prob(table.obs_NO[i:i + chunk], table.act_NA[i:i + chunk])
                      for i in range(0, len(table.obs_NO), chunk)])


# --- training ------------------------------------------------------------------------------------------


def new_policy(table: EpisodeTable, act_low, act_high, hidden: int, seed: int) -> GaussianMLPPolicy:
    torch.manual_seed(seed)
    policy = GaussianMLPPolicy(table.obs_NO.shape[1], table.act_NA.shape[1], hidden=hidden,
                               act_low=torch.as_tensor(act_low), act_high=torch.as_tensor(act_high))
    policy.set_obs_normaliser(table.obs_NO)
    return policy


def _sample_transitions(table: EpisodeTable, ep_B: torch.Tensor, k: int, gen: torch.Generator):
    """k transitions uniform over all steps of the drawn trajectories: entry b with probability
    proportional to its length, then a uniform step inside it. Returns (entry index [k], step index [k])."""
    len_B = table.len_E[ep_B]
    b_K = torch.multinomial(len_B.to(torch.float64), k, replacement=True, generator=gen)
    t_K = (torch.rand(k, generator=gen, dtype=torch.float64) * len_B[b_K]).long()
    return b_K, table.first_E[ep_B[b_K]] + t_K


def train_method(method: str, table: EpisodeTable, s: TrainSettings, seed: int, init: GaussianMLPPolicy,
                 logp_ref_N: torch.Tensor | None = None, on_step=None) -> tuple[GaussianMLPPolicy, dict]:
    """Train one method from a copy of ``init``; return the policy and a few diagnostics.

    ``logp_ref_N`` (pi_ref's cached log-probs) is required for iw_sft_q and unused otherwise.
    """
    pool = method_pool(method, table, s)
    if pool.numel() == 0:
        raise ValueError(f"{method}: no trajectory is selected; the dataset needs more episodes")
    iw = method == "iw_sft_q"
    if iw and logp_ref_N is None:
        raise ValueError("iw_sft_q needs pi_ref's log-probs (logp_ref_N)")
    preset = rmath.IW_PRESETS[s.iw_preset]
    policy = copy.deepcopy(init)
    q = copy.deepcopy(init).requires_grad_(False) if iw else None
    if iw:  # q's log-probs are needed on the pool's trajectories only; refreshed every iw_refresh_every steps
        steps_P = episode_steps(table, pool.unique())
        logp_q_N = torch.zeros_like(logp_ref_N)
    opt = torch.optim.Adam(policy.parameters(), lr=s.lr)
    gen = torch.Generator().manual_seed(seed)
    B = s.trajectories_per_step
    ess_sum = 0.0
    for step in range(s.steps):
        ep_B = pool[torch.randint(len(pool), (B,), generator=gen)]
        b_K, idx_K = _sample_transitions(table, ep_B, s.transitions_per_step, gen)
        logp_K = policy.log_prob(table.obs_NO[idx_K], table.act_NA[idx_K])
        if iw:
            if step % s.iw_refresh_every == 0:
                with torch.no_grad():
                    logp_q_N[steps_P] = q.log_prob(table.obs_NO[steps_P], table.act_NA[steps_P])
            w_B = iw_batch_weights(logp_q_N, logp_ref_N, table, ep_B, preset)
            ess_sum += float(1.0 / (w_B.pow(2).sum()))  # effective sample size of the normalised weights
            # w_B sums to 1; times B (scale_to_count, as algos/iw_sft), a weight of 1 is "as much as SFT"
            loss = -(rmath.scale_to_count(w_B)[b_K] * logp_K).mean()
        else:
            loss = -logp_K.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if iw:
            rmath.ema_update_(q.parameters(), policy.parameters(), preset.ema_decay)
        if on_step is not None:
            on_step()
    stats = {"pool_trajectories": int(pool.unique().numel()), "pool_size": int(pool.numel()),
             "final_loss": float(loss.detach())}
    if iw:
        stats["mean_ess"] = ess_sum / s.steps
    return policy, stats
