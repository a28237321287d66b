"""`reweightlab control run`: BC, SFT (top 10%), SFT(Q) and iw-SFT(Q) on one dataset, the same budget,
several seeds; a results file ``control.json`` (written atomically) and a terminal table.

Per seed: BC is trained from scratch on all data; it is ``pi_ref`` and the starting point of the other
three, which each train for the same number of steps from it. Every policy is evaluated with its mean
action on the same seeded episodes. Spread over seeds is the sample standard deviation (ddof 1).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from reweightlab.config import ConfigError, setting
from reweightlab.control.dataset import import_gymnasium, load_dataset, make_env, return_stats
from reweightlab.control.evaluate import D4RL_REFERENCE, evaluate, reference_returns
from reweightlab.control.policy import save_policy
from reweightlab.control.train import METHODS, EpisodeTable, TrainSettings, all_log_probs, new_policy, train_method
from reweightlab.files import FolderLock, check_new_folder

RESULTS_FILE = "control.json"
METHOD_LABELS = {"bc": "BC (all data)", "sft": "SFT (BC, top 10%)", "sft_q": "SFT(Q)", "iw_sft_q": "iw-SFT(Q)"}
REFERENCE_SOURCE = ("D4RL REF_MIN_SCORE / REF_MAX_SCORE (d4rl/infos.py; Fu et al. 2020, arXiv 2004.07219), "
                    "measured on the -v2 environments: approximate for -v5")
EVAL_SEED_BASE = 1_000_000  # evaluation episodes never reuse the reset seeds of collection


@dataclass(frozen=True)
class RunSettings(TrainSettings):
    """`reweightlab control run`: the training settings of every method plus seeds and evaluation, one flat
    set of keys (flags, a --config file, key=value overrides; reweightlab.config)."""

    seeds: int = setting(3, "training seeds 0, 1, ...: BC and the other three are trained once per seed")
    eval_episodes: int = setting(10, "seeded evaluation episodes per policy")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("seeds", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"config key '{name}': must be >= 1, got {getattr(self, name)}")

    def training(self) -> dict:
        """The TrainSettings part, as control.json's ``settings`` records it."""
        names = {f.name for f in fields(TrainSettings)}
        return {k: v for k, v in asdict(self).items() if k in names}


def _spread(xs: list[float | None]) -> tuple[float | None, float | None]:
    if not xs or any(x is None for x in xs):
        return None, None
    a = np.asarray(xs, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def ordering_verdict(methods: dict) -> dict:
    """The paper's ordering SFT ~ BC(10%) < SFT(Q) <= iw-SFT(Q), checked on the seed means. A gap
    counts as clear when it exceeds the larger of the two methods' seed std."""
    def mean_std(m):
        return methods[m]["return_mean"], methods[m]["return_std"]

    out = {}
    for lo, hi in (("sft", "sft_q"), ("sft_q", "iw_sft_q"), ("bc", "sft")):
        (a, sa), (b, sb) = mean_std(lo), mean_std(hi)
        out[f"{lo} < {hi}"] = {"holds": bool(a < b), "gap": b - a, "clear": bool(abs(b - a) > max(sa, sb))}
    out["paper_ordering_holds"] = bool(out["sft < sft_q"]["holds"] and methods["iw_sft_q"]["return_mean"]
                                       >= methods["sft_q"]["return_mean"] - methods["sft_q"]["return_std"])
    return out


POLICY_DIR = "policies"  # <out>/policies/<method>-seed<k>.safetensors (reweightlab.control.policy.load_policy)


def _one_seed(env_id, table, bounds, s: RunSettings, seed: int, bar, save_dir: Path | None = None) -> dict:
    tick = bar.update if bar is not None else None
    out = {}
    t0 = time.perf_counter()
    bc, stats = train_method("bc", table, s, seed, new_policy(table, *bounds, s.hidden, seed), on_step=tick)
    out["bc"] = {"train_seconds": time.perf_counter() - t0, **stats}
    logp_ref_N = all_log_probs(bc, table)  # pi_ref is frozen: its log-probs are computed once
    policies = {"bc": bc}
    for m in METHODS[1:]:
        t0 = time.perf_counter()
        policies[m], stats = train_method(m, table, s, seed, bc, logp_ref_N=logp_ref_N, on_step=tick)
        out[m] = {"train_seconds": time.perf_counter() - t0, **stats}
    for m, pol in policies.items():
        if save_dir is not None:
            save_policy(pol, save_dir / f"{m}-seed{seed}.safetensors")
        t0 = time.perf_counter()
        out[m].update(evaluate(pol, env_id, s.eval_episodes, seed=EVAL_SEED_BASE + 1000 * seed))
        out[m]["eval_seconds"] = time.perf_counter() - t0
        out[m].pop("returns")
    return out


def run_control(env_id: str, data_path: str | Path, out_dir: str | Path, settings: RunSettings | None = None,
                progress: bool = True, log=print) -> dict:
    """Train and evaluate all four methods for ``settings.seeds`` seeds; write ``out_dir/control.json``."""
    import_gymnasium()  # before reading the data: a missing extra is the first thing to say
    check_new_folder(out_dir, "--out")  # before the data is read or anything is trained
    s = settings or RunSettings()
    seeds, eval_episodes = s.seeds, s.eval_episodes
    torch.set_flush_denormal(True)  # DESIGN: denormals slowed CPU training steps by orders of magnitude
    data = load_dataset(data_path, env_id)
    table = EpisodeTable(data)
    env = make_env(env_id)
    bounds = (env.action_space.low, env.action_space.high)
    env.close()
    dstats = return_stats(data.returns_E)
    log(f"[control] {env_id}: {table.episodes} episodes, {len(table.obs_NO)} transitions, returns "
        f"min {dstats['min']:.1f} / median {dstats['median']:.1f} / max {dstats['max']:.1f}")
    log(f"[control] per method: {s.steps} steps x {s.trajectories_per_step} trajectories "
        f"({s.transitions_per_step} transitions sampled from them per step); {seeds} seed(s), "
        f"{eval_episodes} evaluation episodes each")
    out_dir = Path(out_dir)
    lock = FolderLock(out_dir, "--out").acquire()  # new or empty, and this run's until it ends
    try:
        t_start = time.perf_counter()
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=seeds * len(METHODS) * s.steps, desc="control", unit="step", leave=False)
        per_seed = []
        try:
            for seed in range(seeds):
                per_seed.append(_one_seed(env_id, table, bounds, s, seed, bar, out_dir / POLICY_DIR))
        finally:
            if bar is not None:
                bar.close()
        methods = {}
        for m in METHODS:
            rows = [r[m] for r in per_seed]
            r_mean, r_std = _spread([r["return_mean"] for r in rows])
            sc_mean, sc_std = _spread([r["normalised_score"] for r in rows])
            methods[m] = {"label": METHOD_LABELS[m], "return_mean": r_mean, "return_std": r_std,
                          "score_mean": sc_mean, "score_std": sc_std,
                          "train_seconds_mean": float(np.mean([r["train_seconds"] for r in rows])), "per_seed": rows}
        ref = reference_returns(env_id)
        result = {
            "env_id": env_id, "dataset": str(data_path), "dataset_stats": {**dstats, "transitions": len(table.obs_NO)},
            "dataset_recipe": data.metadata.get("recipe"), "seeds": list(range(seeds)), "eval_episodes": eval_episodes,
            "settings": s.training(), "methods": methods, "ordering": ordering_verdict(methods), "policies": POLICY_DIR,
            "reference_returns": None if ref is None else {"random": ref[0], "expert": ref[1],
                                                           "source": REFERENCE_SOURCE},
            "wall_seconds": time.perf_counter() - t_start, "torch_threads": torch.get_num_threads(),
        }
        from reweightlab.files import write_text_atomic

        write_text_atomic(out_dir / RESULTS_FILE, json.dumps(result, indent=1))
        log(format_table(result))
        log(f"[control] results: {out_dir / RESULTS_FILE} ({result['wall_seconds']:.0f} s)")
        return result
    finally:
        lock.release()


def format_table(result: dict) -> str:
    """The terminal table: mean +- std over seeds of the evaluation return and normalised score."""
    scored = any(m["score_mean"] is not None for m in result["methods"].values())
    head = f"{'method':<20}{'return':>22}" + (f"{'D4RL score':>20}" if scored else "") + f"{'train s':>10}"
    lines = [f"{result['env_id']}: {len(result['seeds'])} seed(s), mean +- std over seeds", head, "-" * len(head)]
    for m in result["methods"].values():
        row = f"{m['label']:<20}{m['return_mean']:>13.1f} +- {m['return_std']:<6.1f}"
        if scored:
            row += f"{m['score_mean']:>11.1f} +- {m['score_std']:<5.1f}"
        lines.append(row + f"{m['train_seconds_mean']:>10.1f}")
    v = result["ordering"]
    lines.append("paper's ordering SFT < SFT(Q) <= iw-SFT(Q): " + ("holds" if v["paper_ordering_holds"] else
                                                                   "does not hold") + " on these seeds")
    return "\n".join(lines)


__all__ = ["D4RL_REFERENCE", "RESULTS_FILE", "RunSettings", "format_table", "ordering_verdict", "run_control"]
