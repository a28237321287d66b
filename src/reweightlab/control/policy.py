"""Gaussian MLP policy for continuous control.

``pi(a|s) = N(a; mu(s), diag(sigma^2))`` in the normalised action space ``[-1, 1]^A``, with
``mu(s) = tanh(MLP(s))`` (3 hidden layers of 256, ReLU) and a state-independent ``log sigma`` clamped
to [-5, 2]. The tanh bounds the mean, not the sample: the density is an ordinary Gaussian, so
log-probabilities of recorded actions (which may sit on the bounds) are finite and exact.

Observations are standardised with the dataset's mean and std, and actions mapped from the
environment's box to [-1, 1]; both are buffers saved with the weights, so a policy file is usable on
its own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from torch import nn

from reweightlab.files import atomic_file

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_LOG_2PI = math.log(2.0 * math.pi)


class GaussianMLPPolicy(nn.Module):
    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256, layers: int = 3,
                 act_low: torch.Tensor | None = None, act_high: torch.Tensor | None = None) -> None:
        super().__init__()
        self.shape = {"obs_dim": int(obs_dim), "act_dim": int(act_dim), "hidden": int(hidden), "layers": int(layers)}
        dims = [obs_dim] + [hidden] * layers
        body: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            body += [nn.Linear(d_in, d_out), nn.ReLU()]
        self.body = nn.Sequential(*body, nn.Linear(dims[-1], act_dim))
        # Initial std 1 in normalised units: wide enough that no recorded action is a near-impossible event.
        self.log_std_A = nn.Parameter(torch.zeros(act_dim))
        low = torch.full((act_dim,), -1.0) if act_low is None else torch.as_tensor(act_low, dtype=torch.float32)
        high = torch.full((act_dim,), 1.0) if act_high is None else torch.as_tensor(act_high, dtype=torch.float32)
        self.register_buffer("act_mid_A", (high + low) / 2)
        self.register_buffer("act_half_A", (high - low) / 2)
        self.register_buffer("obs_mean_O", torch.zeros(obs_dim))
        self.register_buffer("obs_std_O", torch.ones(obs_dim))

    def set_obs_normaliser(self, obs_NO: torch.Tensor) -> None:
        """Standardise inputs with these observations' statistics (std floored: constant features)."""
        self.obs_mean_O.copy_(obs_NO.mean(0))
        self.obs_std_O.copy_(obs_NO.std(0, unbiased=False).clamp(min=1e-3))

    def log_std(self) -> torch.Tensor:
        """Clamped log-std, [A]. Clamping (not a squash) keeps the gradient inside the range."""
        return self.log_std_A.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def mean(self, obs_NO: torch.Tensor) -> torch.Tensor:
        """Mean action in normalised units, [N, A], inside (-1, 1)."""
        return torch.tanh(self.body((obs_NO - self.obs_mean_O) / self.obs_std_O))

    def normalise_action(self, act_NA: torch.Tensor) -> torch.Tensor:
        return (act_NA - self.act_mid_A) / self.act_half_A

    def log_prob(self, obs_NO: torch.Tensor, act_NA: torch.Tensor) -> torch.Tensor:
        """``log pi(a|s)`` per transition, [N]: the diagonal Gaussian density of the normalised action,
        summed over action dimensions (the constant Jacobian of the normalisation cancels in every
        ratio and every gradient, so it is left out)."""
        mu_NA = self.mean(obs_NO)
        log_std_A = self.log_std()
        z_NA = (self.normalise_action(act_NA) - mu_NA) * torch.exp(-log_std_A)
        return (-0.5 * z_NA.pow(2) - log_std_A - 0.5 * _LOG_2PI).sum(-1)

    @torch.no_grad()
    def act(self, obs_NO: torch.Tensor) -> torch.Tensor:
        """Deterministic action (the mean) in the environment's units, [N, A]."""
        return self.mean(obs_NO) * self.act_half_A + self.act_mid_A


def save_policy(policy: GaussianMLPPolicy, path: str | Path) -> Path:
    """Weights and buffers (normalisers, action box) as safetensors, the shape in its metadata;
    written atomically (``reweightlab.files.atomic_file``), so the file is complete or absent."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in policy.state_dict().items()}
    with atomic_file(path) as tmp:
        save_file(tensors, str(tmp), metadata={"reweightlab_policy": json.dumps(policy.shape)})
    return path


def load_policy(path: str | Path) -> GaussianMLPPolicy:
    """A policy written by ``save_policy`` (ValueError naming the file if it is not one)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        meta = (f.metadata() or {}).get("reweightlab_policy")
    if meta is None:
        raise ValueError(f"{path}: not a reweightlab control policy (no 'reweightlab_policy' metadata)")
    policy = GaussianMLPPolicy(**json.loads(meta))
    policy.load_state_dict(load_file(str(path)))
    return policy.eval()
