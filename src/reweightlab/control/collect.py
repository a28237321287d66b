"""Build an offline dataset of mixed quality here, with no download (the shape of D4RL "medium-replay":
many poor episodes, fewer good ones).

- Pendulum-v1: a known controller (energy-shaping swing-up, then a PD hold near the top) run at several
  skill levels: with probability ``random_prob`` a step takes a uniform random action, otherwise the
  controller's torque plus Gaussian noise of ``noise_std`` (in units of the maximum torque).
- MuJoCo (Hopper-v5, HalfCheetah-v5, Walker2d-v5, ...): a stable-baselines3 PPO agent is trained online
  here; snapshots of its policy at several points of training (including the untrained one) are each
  rolled out with their mean action plus Gaussian noise. PPO, not SAC: on 2 CPU cores sb3's PPO ran
  about 590 env steps/s on Hopper-v5 against SAC's 70, so in a 10-minute budget PPO sees ~8x more
  experience and its snapshots cover a wider return range.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reweightlab.config import ConfigError, setting
from reweightlab.control.dataset import (
    CONTROL_HINT,
    ControlError,
    Trajectories,
    concatenate,
    import_gymnasium,
    make_env,
)

SB3_HINT = f"{CONTROL_HINT}  (or: pip install stable-baselines3)"
PENDULUM_EPISODES, MUJOCO_EPISODES = 100, 200
PPO_TRAIN_STEPS = 250_000


class CollectError(ControlError):
    """Collection cannot run as asked (missing optional package, unknown environment)."""


@dataclass(frozen=True)
class CollectSettings:
    """`reweightlab control collect`: its flags, config keys and key=value overrides (reweightlab.config)."""

    episodes: int | None = setting(None, f"episodes to record (unset: {PENDULUM_EPISODES} for Pendulum-v1, "
                                         f"{MUJOCO_EPISODES} for MuJoCo)")
    train_steps: int = setting(PPO_TRAIN_STEPS, "MuJoCo: PPO training steps before the last snapshot")
    seed: int = setting(0, "seed of the behaviour policies (PPO's training, their noise) and of the episode resets")

    def __post_init__(self) -> None:
        for name in ("episodes", "train_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"config key '{name}': must be >= 1, got {value}")


# --- Pendulum: a known controller --------------------------------------------------------------------
# Pendulum-v1 dynamics (gymnasium source): thdd = 3g/(2l) sin(th) + 3/(m l^2) u with g=10, m=l=1, so
# thdd = 15 sin(th) + 3u, th = 0 upright. E = thd^2/2 + 15 cos(th) is conserved without torque and
# dE/dt = 3 u thd, so u = k (E_top - E) sign(thd) pumps energy towards the upright value E_top = 15.
_E_TOP = 15.0
_MAX_TORQUE = 2.0


def pendulum_controller(obs_NO: np.ndarray) -> np.ndarray:
    """Energy-shaping swing-up far from the top, PD hold within ~30 degrees of it. [N, 3] -> [N, 1]."""
    cos, sin, thd = obs_NO[:, 0], obs_NO[:, 1], obs_NO[:, 2]
    th = np.arctan2(sin, cos)
    energy = 0.5 * thd**2 + _E_TOP * cos
    swing = 1.0 * (_E_TOP - energy) * np.sign(thd + 1e-6)
    hold = -(10.0 * th + 2.0 * thd)
    u = np.where(cos > 0.85, hold, swing)
    return np.clip(u, -_MAX_TORQUE, _MAX_TORQUE)[:, None].astype(np.float32)


@dataclass(frozen=True)
class SkillLevel:
    """One behaviour policy: noise on the base action, and a chance of a uniform random action."""

    name: str
    noise_std: float  # Gaussian noise, in units of half the action range
    random_prob: float  # probability that a step takes a uniform random action instead


PENDULUM_LEVELS = (
    SkillLevel("expert", 0.05, 0.0),
    SkillLevel("good", 0.3, 0.1),
    SkillLevel("medium", 0.5, 0.3),
    SkillLevel("poor", 0.5, 0.6),
    SkillLevel("random", 0.0, 1.0),
)
MUJOCO_NOISE = (0.1, 0.3)


def rollout(env_id: str, act_fn: Callable[[np.ndarray], np.ndarray], level: SkillLevel, episodes: int,
            seed: int) -> Trajectories:
    """Run ``episodes`` episodes of ``act_fn`` (batch of observations -> actions) at a skill level."""
    env = make_env(env_id)
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    half = (high - low) / 2.0
    cols: dict[str, list] = {k: [] for k in ("obs", "act", "rew", "term", "trunc", "start")}
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed * 100_003 + ep)
        first = True
        while True:
            act = act_fn(obs[None].astype(np.float32))[0] + level.noise_std * half * rng.standard_normal(len(low))
            if rng.random() < level.random_prob:
                act = rng.uniform(low, high)
            act = np.clip(act, low, high).astype(np.float32)
            nxt, rew, term, trunc, _ = env.step(act)
            for k, v in zip(cols, (obs, act, rew, term, trunc, first), strict=True):
                cols[k].append(v)
            obs, first = nxt, False
            if term or trunc:
                break
    env.close()
    return Trajectories(np.asarray(cols["obs"], np.float32), np.asarray(cols["act"], np.float32),
                        np.asarray(cols["rew"], np.float32), np.asarray(cols["term"], bool),
                        np.asarray(cols["trunc"], bool), np.asarray(cols["start"], bool))


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (i < extra) for i in range(parts)]


def collect_pendulum(episodes: int = PENDULUM_EPISODES, seed: int = 0, log=print) -> Trajectories:
    """Pendulum-v1 data: the controller at the skill levels in ``PENDULUM_LEVELS``, episodes split evenly."""
    parts = []
    for i, (level, n) in enumerate(zip(PENDULUM_LEVELS, _split(episodes, len(PENDULUM_LEVELS)), strict=True)):
        if n:
            parts.append(rollout("Pendulum-v1", pendulum_controller, level, n, seed * 1000 + i))
            log(f"  {level.name:<7} {n} episodes, mean return {parts[-1].returns_E.mean():.1f}")
    recipe = {"behaviour": "energy-shaping swing-up + PD hold (reweightlab.control.collect.pendulum_controller)",
              "levels": [vars(lv) for lv in PENDULUM_LEVELS], "episodes": episodes, "seed": seed}
    return concatenate(parts, {"env_id": "Pendulum-v1", "recipe": recipe})


def _import_sb3():
    try:
        import stable_baselines3
    except ImportError:
        raise CollectError(f"collecting MuJoCo data trains a policy with stable-baselines3, which is not "
                           f"installed: {SB3_HINT}") from None
    return stable_baselines3


def train_snapshots(env_id: str, train_steps: int, n_snapshots: int, seed: int, log=print) -> list[tuple[int, dict]]:
    """Train sb3 PPO online for ``train_steps`` env steps; return (step, policy state) at evenly spread
    points on a square-root schedule (early policies change fastest), the untrained policy first."""
    import copy

    import torch

    sb3 = _import_sb3()
    from stable_baselines3.common.callbacks import BaseCallback

    marks = sorted({int(train_steps * (i / (n_snapshots - 1)) ** 2) for i in range(n_snapshots)})
    model = sb3.PPO("MlpPolicy", make_env(env_id), seed=seed, verbose=0, device="cpu")
    snaps = [(0, copy.deepcopy(model.policy.state_dict()))]

    class _Snap(BaseCallback):
        def _on_step(self) -> bool:
            if len(snaps) < len(marks) and self.num_timesteps >= marks[len(snaps)]:
                snaps.append((self.num_timesteps, copy.deepcopy(model.policy.state_dict())))
            return True

    t0 = time.perf_counter()
    model.learn(train_steps, callback=_Snap())
    if len(snaps) < len(marks):  # the last mark fell after the final update: take the final policy
        snaps.append((model.num_timesteps, copy.deepcopy(model.policy.state_dict())))
    log(f"  PPO trained {model.num_timesteps} steps in {time.perf_counter() - t0:.0f} s; "
        f"snapshots at {[s for s, _ in snaps]}")
    policy = model.policy
    loaded = [None]  # which snapshot the shared policy module holds: load each state once, not per step

    def make_act(state: dict):
        def act(obs_NO: np.ndarray) -> np.ndarray:
            if loaded[0] is not state:
                policy.load_state_dict(state)
                loaded[0] = state
            with torch.no_grad():
                return policy.predict(obs_NO, deterministic=True)[0]
        return act

    return [(step, make_act(state)) for step, state in snaps]


def collect_mujoco(env_id: str, episodes: int = MUJOCO_EPISODES, seed: int = 0, train_steps: int = PPO_TRAIN_STEPS,
                   n_snapshots: int = 6, log=print) -> Trajectories:
    """MuJoCo data: PPO snapshots x noise levels in ``MUJOCO_NOISE``, episodes split evenly."""
    snaps = train_snapshots(env_id, train_steps, n_snapshots, seed, log)
    combos = [(step, act, sd) for step, act in snaps for sd in MUJOCO_NOISE]
    parts = []
    for i, ((step, act, sd), n) in enumerate(zip(combos, _split(episodes, len(combos)), strict=True)):
        if n:
            parts.append(rollout(env_id, act, SkillLevel(f"ppo@{step}", sd, 0.0), n, seed * 1000 + i))
            log(f"  snapshot {step:>7} noise {sd}: {n} episodes, mean return {parts[-1].returns_E.mean():.1f}")
    recipe = {"behaviour": "stable-baselines3 PPO (default hyperparameters) snapshots, mean action + Gaussian noise",
              "snapshot_steps": [s for s, _ in snaps], "noise_std": list(MUJOCO_NOISE),
              "train_steps": train_steps, "episodes": episodes, "seed": seed}
    return concatenate(parts, {"env_id": env_id, "recipe": recipe})


def collect(env_id: str, settings: CollectSettings | None = None, *, user_keys=frozenset(),
            log=print) -> Trajectories:
    """Dispatch on the environment: the controller for Pendulum-v1, PPO snapshots for anything else.
    ``user_keys``: the keys the user set (reweightlab.config.load), to refuse one that does nothing."""
    s = settings or CollectSettings()
    gym = import_gymnasium()
    try:
        gym.spec(env_id)
    except gym.error.Error as exc:
        raise CollectError(f"unknown environment {env_id!r}: {exc}") from None
    t0 = time.perf_counter()
    if env_id == "Pendulum-v1":
        if "train_steps" in user_keys:
            raise ConfigError("config key 'train_steps' does nothing for Pendulum-v1: a controller, not PPO, "
                              "makes its data")
        data = collect_pendulum(s.episodes or PENDULUM_EPISODES, s.seed, log)
    else:
        _import_sb3()  # fail before any work when the optional extra is missing
        data = collect_mujoco(env_id, s.episodes or MUJOCO_EPISODES, s.seed, s.train_steps, log=log)
    data.metadata["collect_seconds"] = round(time.perf_counter() - t0, 1)
    if not math.isfinite(float(data.returns_E.sum())):
        raise CollectError("collected returns are not finite")
    return data
