"""Offline trajectory datasets for the control side: one ``.npz`` file per dataset.

Format (version 1), N transitions of E episodes stored back to back:

- ``observations`` float32 [N, obs_dim]: the observation the action was taken in;
- ``actions``      float32 [N, act_dim]: the action taken (in the environment's action space);
- ``rewards``      float32 [N]: the reward received for it;
- ``terminations`` bool    [N]: the episode ended in a terminal state after this step;
- ``truncations``  bool    [N]: the episode was cut (time limit) after this step;
- ``episode_starts`` bool  [N]: True on the first step of each episode (``episode_starts[0]`` is True);
- ``metadata``     a 0-d string array holding JSON: ``env_id``, ``format_version``, how the data was made
  (``recipe``), and the return distribution (``return_stats``).

Files are written through ``reweightlab.files.atomic_file`` (a temporary name in the target folder,
then one rename), so a reader never sees half a file. ``load_dataset`` checks everything a training
run relies on and names the file and the field in every error.

The environments (gymnasium, MuJoCo) are the ``control`` extra: nothing here imports them at module
level, because the main CLI imports this module for ``ControlError``. ``import_gymnasium`` and
``make_env`` turn a missing package into a ``ControlError`` that says what to install.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reweightlab.files import atomic_file

FORMAT_VERSION = 1
ARRAY_FIELDS = ("observations", "actions", "rewards", "terminations", "truncations", "episode_starts")


class ControlError(ValueError):
    """A control command that cannot run as asked; the CLI prints it as one ``error:`` line (exit 2)."""


class DatasetError(ControlError):
    """A dataset file that cannot be used as it is (the message names the file and the field)."""


CONTROL_HINT = "pip install 'reweightlab[control]'"


def import_gymnasium():
    """The gymnasium module, or a ControlError naming the extra that installs it."""
    try:
        import gymnasium
    except ImportError:
        raise ControlError(f"control environments need gymnasium, which is not installed: {CONTROL_HINT}") from None
    return gymnasium


def make_env(env_id: str):
    """``gymnasium.make(env_id)``; a missing simulator (gymnasium without MuJoCo) is a ControlError too."""
    gym = import_gymnasium()
    try:
        return gym.make(env_id)
    except gym.error.DependencyNotInstalled as exc:
        raise ControlError(f"{env_id} needs a package that is not installed ({exc}): {CONTROL_HINT}") from None


@dataclass(frozen=True)
class Trajectories:
    """Transitions of whole episodes, stored back to back (see the module docstring)."""

    obs_NO: np.ndarray
    act_NA: np.ndarray
    rew_N: np.ndarray
    term_N: np.ndarray
    trunc_N: np.ndarray
    start_N: np.ndarray
    metadata: dict = field(default_factory=dict)

    @property
    def bounds_E2(self) -> np.ndarray:
        """[E, 2] int64: (first index, one past the last index) of each episode."""
        first_E = np.flatnonzero(self.start_N)
        end_E = np.append(first_E[1:], len(self.start_N))
        return np.stack([first_E, end_E], axis=1).astype(np.int64)

    @property
    def returns_E(self) -> np.ndarray:
        """Undiscounted return of each episode (float64 sums, so long episodes do not lose digits)."""
        first_E = np.flatnonzero(self.start_N)
        return np.add.reduceat(self.rew_N.astype(np.float64), first_E) if len(first_E) else np.zeros(0)

    @property
    def lengths_E(self) -> np.ndarray:
        b = self.bounds_E2
        return b[:, 1] - b[:, 0]


def return_stats(returns_E: np.ndarray) -> dict:
    """Summary of an episode-return distribution: episodes, mean, std, min, quartiles, max."""
    r = np.asarray(returns_E, dtype=np.float64)
    q = np.percentile(r, [0, 25, 50, 75, 100]) if len(r) else [float("nan")] * 5
    return {"episodes": int(len(r)), "mean": float(r.mean()) if len(r) else float("nan"),
            "std": float(r.std()) if len(r) else float("nan"),
            "min": float(q[0]), "q25": float(q[1]), "median": float(q[2]), "q75": float(q[3]), "max": float(q[4])}


def concatenate(parts: list[Trajectories], metadata: dict) -> Trajectories:
    """Join datasets of whole episodes (each part starts an episode)."""
    cat = [np.concatenate([getattr(p, name) for p in parts]) for name in
           ("obs_NO", "act_NA", "rew_N", "term_N", "trunc_N", "start_N")]
    return Trajectories(*cat, metadata=metadata)


def save_dataset(path: str | Path, data: Trajectories) -> Path:
    """Write ``data`` to ``path`` atomically (``reweightlab.files.atomic_file``)."""
    path = Path(path)
    meta = {"format_version": FORMAT_VERSION, **data.metadata, "transitions": int(len(data.rew_N)),
            "return_stats": return_stats(data.returns_E)}
    arrays = {
        "observations": data.obs_NO.astype(np.float32), "actions": data.act_NA.astype(np.float32),
        "rewards": data.rew_N.astype(np.float32), "terminations": data.term_N.astype(bool),
        "truncations": data.trunc_N.astype(bool), "episode_starts": data.start_N.astype(bool),
        "metadata": np.array(json.dumps(meta)),
    }
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:  # a file object: numpy would add ".npz" to a name
        np.savez(fh, **arrays)
    return path


def _fail(path, name: str, why: str):
    raise DatasetError(f"{path}: field '{name}': {why}")


def _check_arrays(path, arrays: dict) -> None:
    for name in ARRAY_FIELDS:
        if name not in arrays:
            _fail(path, name, f"missing (a dataset needs {', '.join(ARRAY_FIELDS)})")
    n = len(arrays["rewards"])
    if n == 0:
        _fail(path, "rewards", "the dataset holds no transitions")
    for name in ARRAY_FIELDS:
        a = arrays[name]
        want_dim = 2 if name in ("observations", "actions") else 1
        if a.ndim != want_dim:
            _fail(path, name, f"expected {want_dim} dimension(s), got shape {a.shape}")
        if len(a) != n:
            _fail(path, name, f"length {len(a)} does not match 'rewards' length {n}")
        if name in ("observations", "actions", "rewards") and not np.isfinite(a).all():
            bad = int(np.flatnonzero(~np.isfinite(a).reshape(n, -1).all(axis=1))[0])
            _fail(path, name, f"holds NaN or inf (first at row {bad})")
    if not bool(arrays["episode_starts"][0]):
        _fail(path, "episode_starts", "the first transition must start an episode")


def _check_spaces(path, arrays: dict, env_id: str) -> None:
    env = make_env(env_id)
    try:
        for name, space in (("observations", env.observation_space), ("actions", env.action_space)):
            want = tuple(space.shape)
            got = tuple(arrays[name].shape[1:])
            if got != want:
                _fail(path, name, f"shape per step {got} does not fit {env_id}, which expects {want}")
    finally:
        env.close()


MINARI_PREFIX = "minari:"


def load_dataset(path: str | Path, env_id: str | None = None) -> Trajectories:
    """Read and validate a dataset file; with ``env_id``, also check shapes against that environment.

    ``minari:ID`` or ``minari:FOLDER`` reads a Minari dataset already on disk (``load_minari``) and
    checks it the same way."""
    if str(path).startswith(MINARI_PREFIX):
        return _load_minari_checked(str(path)[len(MINARI_PREFIX):], env_id)
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable .npz dataset ({exc})") from None
    meta = {}
    if "metadata" in arrays:
        try:
            meta = json.loads(str(arrays.pop("metadata")))
        except json.JSONDecodeError as exc:
            _fail(path, "metadata", f"not valid JSON ({exc})")
    _check_arrays(path, arrays)
    if env_id is not None:
        if meta.get("env_id") not in (None, env_id):
            _fail(path, "metadata", f"env_id is {meta['env_id']!r}, but the run asks for {env_id!r}")
        _check_spaces(path, arrays, env_id)
    return Trajectories(
        arrays["observations"].astype(np.float32), arrays["actions"].astype(np.float32),
        arrays["rewards"].astype(np.float32), arrays["terminations"].astype(bool),
        arrays["truncations"].astype(bool), arrays["episode_starts"].astype(bool), metadata=meta,
    )


MINARI_HINT = "pip install 'reweightlab[minari]'  (or: pip install minari)"


def load_minari(name_or_path: str) -> Trajectories:
    """Read a Minari dataset already on disk (D4RL's successor format) into :class:`Trajectories`.

    ``name_or_path`` is a Minari dataset id found in the local Minari root (never downloaded), or the
    folder of one (the dataset folder or its ``data`` subfolder). Box observations only. Needs the
    optional ``minari`` package.
    """
    try:
        import minari
    except ImportError:
        raise ImportError(f"reading Minari datasets needs the minari package: {MINARI_HINT}") from None
    p = Path(name_or_path)
    if p.is_dir():
        ds = minari.MinariDataset(p / "data" if (p / "data").is_dir() else p)
    else:
        try:
            ds = minari.load_dataset(name_or_path, download=False)
        except FileNotFoundError as exc:
            raise DatasetError(f"{name_or_path}: no Minari dataset of that id on disk ({exc}); reweightlab never "
                               f"downloads: run `minari download {name_or_path}` first, or give its folder") from None
    parts = []
    for ep in ds.iterate_episodes():
        T = len(ep.rewards)
        if not isinstance(ep.observations, np.ndarray):
            raise DatasetError(f"{name_or_path}: field 'observations': not an array (dict observations are "
                               "not supported)")
        # Minari stores T+1 observations per episode (the last has no action): drop the last.
        start = np.zeros(T, dtype=bool)
        start[0] = True
        parts.append(Trajectories(np.asarray(ep.observations[:T], np.float32), np.asarray(ep.actions, np.float32),
                                  np.asarray(ep.rewards, np.float32), np.asarray(ep.terminations, bool),
                                  np.asarray(ep.truncations, bool), start))
    if not parts:
        raise DatasetError(f"{name_or_path}: the Minari dataset holds no episodes")
    env_spec = ds.env_spec
    meta = {"env_id": None if env_spec is None else env_spec.id, "recipe": f"minari dataset {ds.id}"}
    return concatenate(parts, meta)


def _load_minari_checked(name_or_path: str, env_id: str | None) -> Trajectories:
    """load_minari, then the same checks as a .npz file (lengths, finite values, shapes for ``env_id``)."""
    try:
        t = load_minari(name_or_path)
    except ImportError as exc:
        raise DatasetError(str(exc)) from None
    where = f"{MINARI_PREFIX}{name_or_path}"
    arrays = {"observations": t.obs_NO, "actions": t.act_NA, "rewards": t.rew_N, "terminations": t.term_N,
              "truncations": t.trunc_N, "episode_starts": t.start_N}
    _check_arrays(where, arrays)
    if env_id is not None:
        _check_spaces(where, arrays, env_id)
    return t
