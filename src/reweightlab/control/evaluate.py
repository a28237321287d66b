"""Evaluate a control policy: mean return over N seeded episodes with the policy mean, and the D4RL
normalised score where reference returns are known.

D4RL normalised score (Fu et al. 2020, arXiv 2004.07219): ``100 * (R - R_random) / (R_expert - R_random)``.
The reference returns below are D4RL's ``REF_MIN_SCORE`` / ``REF_MAX_SCORE`` (``d4rl/infos.py``, also in
Minari's ``ref_min_score``/``ref_max_score`` of the mujoco datasets): a uniform random policy and a SAC
expert, measured on the v2 environments (mujoco-py). The v5 environments of gymnasium use the MuJoCo
bindings and differ in small details, so scores on v5 are approximate. Pendulum-v1 has no D4RL
reference, so it gets no normalised score.
"""

from __future__ import annotations

import numpy as np
import torch

from reweightlab.control.dataset import make_env
from reweightlab.control.policy import GaussianMLPPolicy

# (random, expert) returns from D4RL infos.py, for the -v2 environments.
D4RL_REFERENCE = {
    "Hopper": (-20.272305, 3234.3),
    "HalfCheetah": (-280.178953, 12135.0),
    "Walker2d": (1.629008, 4592.3),
    "Ant": (-325.6, 3879.7),
}


def reference_returns(env_id: str) -> tuple[float, float] | None:
    """D4RL (random, expert) returns for the environment family of ``env_id``, or None."""
    return D4RL_REFERENCE.get(env_id.split("-")[0])


def normalised_score(env_id: str, ret: float) -> float | None:
    ref = reference_returns(env_id)
    if ref is None:
        return None
    lo, hi = ref
    return 100.0 * (ret - lo) / (hi - lo)


@torch.no_grad()
def evaluate(policy: GaussianMLPPolicy, env_id: str, episodes: int = 10, seed: int = 0) -> dict:
    """Run ``episodes`` episodes (reset seeds ``seed, seed+1, ...``) with the policy's mean action.

    The environments run side by side so that each time step is one batched forward pass.
    """
    envs = [make_env(env_id) for _ in range(episodes)]
    obs = [env.reset(seed=seed + i)[0] for i, env in enumerate(envs)]
    ret_E = np.zeros(episodes)
    len_E = np.zeros(episodes, dtype=np.int64)
    live = list(range(episodes))
    while live:
        act_LA = policy.act(torch.as_tensor(np.stack([obs[i] for i in live]), dtype=torch.float32)).numpy()
        still = []
        for i, act in zip(live, act_LA, strict=True):
            obs[i], rew, term, trunc, _ = envs[i].step(act)
            ret_E[i] += rew
            len_E[i] += 1
            if not (term or trunc):
                still.append(i)
        live = still
    for env in envs:
        env.close()
    mean = float(ret_E.mean())
    return {"return_mean": mean, "return_std": float(ret_E.std()), "returns": ret_E.tolist(),
            "mean_length": float(len_E.mean()), "normalised_score": normalised_score(env_id, mean)}
