"""`reweightlab study` (and `reweightlab demo`, the same on the embedded model): the claims, tested.

base model (the embedded one is pretrained here and cached) -> the base's scored samples, shared by
the arms that curate from them -> every arm trained once per seed on an equal budget (recipes/arms.py)
-> every checkpoint of the curve arms evaluated (recipes/curves.py) -> `reweightlab probe` on the base
and every trained model, once per rule -> each claim tested by the stated rule (recipes/claims.py,
recipes/verdicts.py) -> summary.json, curves.json, claims.json, probe-<rule>/, report.html.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from datetime import datetime
from pathlib import Path
from queue import Empty

import torch

from reweightlab.algos import get_method
from reweightlab.config import ConfigError
from reweightlab.files import write_text_atomic
from reweightlab.models import load_model, load_tokenizer
from reweightlab.probe.command import run_probe
from reweightlab.probe.regimes import RegimeThresholds
from reweightlab.probe.study import ProbeSettings
from reweightlab.recipes import claims as claims_mod
from reweightlab.recipes.arms import ARMS, CURVE_ARMS, RL_KL_BETA, arm_config, run_label
from reweightlab.recipes.curves import CurveInputs, evaluate_run
from reweightlab.recipes.demo import DEFAULT_BUDGET, QUICK_BUDGET, DemoBudget, format_table, spread_across_seeds
from reweightlab.recipes.demo import _vs_base_figures as vs_base_figures
from reweightlab.recipes.pretrain import ensure_embedded
from reweightlab.rollout import HFRolloutEngine
from reweightlab.rollout.scored import sample_and_score
from reweightlab.tasks.hooks import has_feedback, use_tokenizer
from reweightlab.tasks.user_task import is_data_file, resolve_task
from reweightlab.train.config import config_from_dict
from reweightlab.train.loop import train

PROBE_SEED_OFFSET = 7919  # the probe's prompts and samples: a stream of their own
CURVE_SEED_OFFSET = 31337


def _open_task(budget: DemoBudget):
    extra = {"success_threshold": budget.success_threshold} if is_data_file(budget.task) else {}
    task = resolve_task(budget.task, budget.reward or None, **extra)
    variants = tuple(getattr(task, "variants", ("id",)))
    for name in budget.arms:
        arm = ARMS[name]
        if arm.variant not in variants:
            raise ConfigError(f"config key 'arms': arm '{name}' trains on the '{arm.variant}' variant; task "
                              f"{budget.task!r} has {list(variants)}")
        if "revision_attempts" in arm.rl and not has_feedback(task):
            raise ConfigError(f"config key 'arms': arm '{name}' trains on revision episodes, which need a task whose "
                              f"verifier gives feedback; task {budget.task!r} has none")
        if name == "sft_q" and is_data_file(budget.task):
            raise ConfigError("config key 'arms': sft_q's quality thresholds are GeneralPoints' scores; leave it "
                              "out for a data file task")
    return task, [v for v in ("id", "ood") if v in variants]


def _data_keys(budget: DemoBudget) -> dict:
    if is_data_file(budget.task):
        return {"path": budget.task, "reward": budget.reward, "success_threshold": budget.success_threshold}
    return {"task": budget.task}


def run_study(out_root: str | Path = "runs", *, quick: bool = False, seed: int = 0, progress: bool = True,
              log=print, budget: DemoBudget | None = None, name: str = "demo") -> Path:
    """The whole study; ``budget`` (from demo.load_budget) replaces the default or quick one."""
    torch.set_flush_denormal(True)
    budget = budget or (QUICK_BUDGET if quick else DEFAULT_BUDGET)
    t_start = time.perf_counter()
    task, variants = _open_task(budget)  # bad arms or task: one line, before anything is built or written
    base = str(ensure_embedded(budget.pretrain, progress=progress, log=log)) if budget.base == "embedded" \
        else budget.base
    if not (Path(base) / "config.json").is_file():
        raise ConfigError(f"config key 'base': {base} is not a model folder (no config.json)")
    out = Path(out_root) / f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}{'-quick' if quick else ''}"
    summary = {"budget": {**budget.__dict__, "pretrain": budget.pretrain.key(), "search": budget.search.to_dict(),
                          "rl_steps": budget.rl_steps, "sequences_per_method": budget.sequences},
               "base_model": base, "quick": quick, "seed": seed, "methods": {}, "labels": {}}
    tok = load_tokenizer(base)
    use_tokenizer(task, tok)
    log(f"sampling the base model: {budget.num_prompts} prompts x {budget.base_samples_per_prompt}")
    base_samples, base_problems, summary["base_parameters"] = _sample_base(base, tok, task, budget, seed, progress)
    summary["base_samples"] = {"n": len(base_samples), "success_rate": float(base_samples.success_N.mean())}
    _check_curated(budget, base_samples)
    out.mkdir(parents=True, exist_ok=False)  # only now: a study that cannot start leaves nothing behind

    t0 = time.perf_counter()
    models, runs = _train_all(budget, base, out, seed, base_samples, base_problems, summary, progress, log)
    summary["train_seconds"] = round(time.perf_counter() - t0, 1)  # the stage's wall time (runs side by side)

    t0 = time.perf_counter()
    curves = _curves(runs, budget, tok, task, variants, base, base_problems, seed, log)
    write_text_atomic(out / "curves.json", json.dumps(curves, indent=1))
    summary["curves_seconds"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    summary["eval"], summary["probe"] = _probe_all(models, budget, variants, seed, progress, out, log)
    summary["probe_seconds"] = round(time.perf_counter() - t0, 1)
    summary["across_seeds"] = spread_across_seeds(summary, variants)
    claims = claims_mod.compute_claims(out, summary, curves)
    write_text_atomic(out / "claims.json", json.dumps(claims, indent=2))
    summary["total_seconds"] = round(time.perf_counter() - t_start, 1)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    log(format_table(summary, variants))
    log(format_claims(claims))
    log(f"\nwrote {out / 'summary.json'} and {out / 'claims.json'}")
    from reweightlab.report import write_report  # here, not at the top: matplotlib loads only once it is needed

    log(f"report: {write_report([out])}")
    return out


def _train_all(budget: DemoBudget, base: str, out: Path, seed: int, base_samples, base_problems, summary: dict,
               progress: bool, log) -> tuple[dict, dict]:
    """Every arm once per training seed (the negative control once): ``models`` (label -> model folder,
    the base included) and ``runs`` (label -> (arm, seed, start, run folder)); each run's seconds go into
    ``summary``. Serially in this process, or side by side in one-thread workers (train_pool)."""
    from reweightlab.recipes import train_pool

    models, runs, jobs = {"base": base}, {}, []
    for arm_name in budget.arms:
        arm = ARMS[arm_name]
        summary["methods"][arm_name] = {"seeds": {}, "summary": arm.summary}
        seeds = budget.train_seeds[:1] if arm.method is None else budget.train_seeds
        for train_seed in seeds:
            s, label = seed + train_seed, run_label(arm_name, seed + train_seed)
            summary["labels"][label] = {"method": arm_name, "seed": s}
            models[label] = base  # the negative control's model; a trained run's final model once it is done
            summary["methods"][arm_name]["seeds"][str(s)] = {"label": label, "run_dir": None, "train_seconds": 0.0}
            if arm.method is None:  # the negative control: the base itself, probed as if it were trained
                continue

            def config(done, arm=arm, s=s):
                start = done[run_label(arm.start, s)] if arm.start else base
                return arm_config(arm, budget, start, out, s, data=_data_keys(budget))

            source = config_from_dict(config({run_label(arm.start, s): base} if arm.start else {})).resolved_source()
            jobs.append(train_pool.Job(label, config, after=(run_label(arm.start, s),) if arm.start else (),
                                       shared=source in ("base_samples", "search"), cost=_run_cost(arm, budget)))
    shared = {"base_samples": base_samples, "base_problems": base_problems}

    def record(done) -> None:
        arm_name, s = summary["labels"][done.label]["method"], summary["labels"][done.label]["seed"]
        start = models[run_label(ARMS[arm_name].start, s)] if ARMS[arm_name].start else base
        models[done.label] = str(Path(done.run_dir) / "final")
        runs[done.label] = (arm_name, s, start, Path(done.run_dir))
        summary["methods"][arm_name]["seeds"][str(s)] = {"label": done.label, "run_dir": done.run_dir,
                                                         "train_seconds": done.seconds}

    workers = train_pool.train_workers(budget.task, len(jobs))
    if workers == 1:
        for job in jobs:
            t0 = time.perf_counter()
            cfg = config_from_dict(job.config(models))
            extra = {} if not job.shared else {**shared, "base_samples": base_samples.select(
                torch.arange(len(base_samples)))}
            run_dir = train(cfg, progress=progress, log=log, **extra)
            record(train_pool.Done(job.label, str(run_dir), round(time.perf_counter() - t0, 1)))
        return models, runs
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    quiet = (hf_logging.get_verbosity() >= hf_logging.ERROR, not hf_logging.is_progress_bar_enabled())
    threads = max(1, torch.get_num_threads() // workers)
    log(f"training {len(jobs)} runs, {workers} side by side in worker processes ({threads} thread(s) each)")
    with tqdm(total=len(jobs), disable=not progress, desc="training", unit="run") as bar:
        def finished(done) -> None:
            record(done)
            for line in done.lines:  # the run's own lines, marked with its label (two runs share the screen)
                (bar.write if progress else log)(f"{done.label}: {line}")
            bar.update(1)

        train_pool.run_pool(jobs, workers, shared, threads=threads, quiet=quiet, on_done=finished)
    return models, {job.label: runs[job.label] for job in jobs}  # in the study's order, not the finishing order


def _run_cost(arm, budget: DemoBudget) -> float:
    """A run's relative cost, to start the longest first: RL on revision episodes, then RL, then offline."""
    method = get_method(arm.method)
    if not method.is_rl:
        return float(budget.offline_steps)
    attempts = budget.revision_attempts if "revision_attempts" in arm.rl else 1
    return float(budget.rl_steps) * 4 * (1 + attempts)


def _check_curated(budget: DemoBudget, base_samples) -> None:
    """The arms that curate the base's samples need at least one success among them."""
    curated = [a for a in budget.arms if ARMS[a].method and get_method(ARMS[a].method).needs_scores
               and not get_method(ARMS[a].method).is_rl]
    if curated and not bool(base_samples.success_N.any()):
        raise ConfigError(f"config key 'base': it succeeded on none of its {len(base_samples)} samples of the training "
                          f"prompts, so {', '.join(curated)} have nothing to train on; start from a stronger base, "
                          "raise base_samples_per_prompt, or leave those arms out of 'arms'")


def _sample_base(base: str, tok, task, budget: DemoBudget, seed: int, progress: bool):
    model = load_model(base)
    problems = task.problems("id", "train", budget.num_prompts, seed)
    engine = HFRolloutEngine(model, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    samples = sample_and_score(engine, task, problems, tok, samples_per_prompt=budget.base_samples_per_prompt,
                               max_new_tokens=budget.max_new_tokens, seed=seed, progress=progress).store
    return samples, problems, sum(p.numel() for p in model.parameters())


def _curves(runs: dict, budget: DemoBudget, tok, task, variants, base, base_problems, seed, log) -> dict:
    """Every checkpoint of the curve arms: 'bound' points for claim a's arms, 'rule' points for claim b's.

    The bounds are evaluated on a fresh draw of the base's samples of the J prompts, never on the
    curated data the arms trained on: measured there, a bound rewards memorising those samples
    (their likelihood ratio under the trained model is large exactly because they were trained on)."""
    wanted = {label: r for label, r in runs.items() if r[0] in CURVE_ARMS}
    if not wanted:
        return {"reference": None, "runs": {}}
    n_train = min(budget.curve_prompts, len(base_problems))
    problems = base_problems[:n_train]
    engine = HFRolloutEngine(load_model(base), eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    fresh = sample_and_score(engine, task, problems, tok, samples_per_prompt=budget.base_samples_per_prompt,
                             max_new_tokens=budget.max_new_tokens, seed=seed + CURVE_SEED_OFFSET + 1).store
    tests = {v: task.problems(v, "test", budget.eval_prompts, seed + PROBE_SEED_OFFSET) for v in variants}
    inputs = CurveInputs(tokenizer=tok, task=task, train_problems=problems, test_problems=tests,
                         base_store=fresh, samples_per_prompt=budget.curve_samples,
                         max_new_tokens=budget.max_new_tokens, seed=seed + CURVE_SEED_OFFSET)
    rl_batch = budget.rl_prompts_per_step * budget.rl_samples_per_prompt
    out = {}
    for label, (arm, s, start, run_dir) in wanted.items():
        kind = "rule" if ARMS[arm].start else "bound"
        per_step = rl_batch if ARMS[arm].method in ("grpo", "rloo", "reinforce") else budget.offline_sequences_per_step
        out[label] = {"arm": arm, "seed": s, "kind": kind, "start": start,
                      "points": evaluate_run(run_dir, start, kind, inputs, per_step)}
    log(f"evaluated the checkpoints of {len(out)} runs")
    reference = {"prompts": n_train, "samples": len(fresh), "success_rate": float(fresh.success_N.mean()),
                 "seed": seed + CURVE_SEED_OFFSET + 1}
    return {"reference": reference, "runs": out}


def probe_workers(variants, task: str = "generalpoints") -> int:
    """Processes that probe the rules side by side: one per rule when the machine has a core for each
    (the rules' probes share nothing, and on these small models two one-thread processes get through
    the work about 1.3x faster than one two-thread process); REWEIGHTLAB_PROBE_WORKERS=1 probes them
    one after the other, as does a task registered in this process only (a worker would not know it)."""
    from reweightlab.tasks.registry import is_builtin_task

    if not (is_data_file(task) or is_builtin_task(task)):
        return 1
    wanted = int(os.environ.get("REWEIGHTLAB_PROBE_WORKERS", "0") or 0)
    cores = os.cpu_count() or 1
    return max(1, min(len(variants), wanted or cores))


def _probe_rule(base: str, trained: dict, settings: ProbeSettings, out: Path, threads: int) -> dict:
    """One rule's probe in a worker process (spawned: nothing of the parent's OpenMP state is inherited)."""
    torch.set_num_threads(threads)
    return run_probe(base, trained, settings, out, progress=False, log=lambda *_: None)


def _side_by_side(calls: dict, workers: int) -> dict:
    """``_probe_rule(*args)`` for each item of ``calls``, ``workers`` spawned processes at a time. On an
    interrupt (Ctrl-C, SIGTERM) or a worker's error the others are interrupted too (SIGINT: each unwinds
    through its own clean-up, which removes the probe folder it had started), then stopped and joined, and
    the error is raised here: nothing is left running."""
    from transformers.utils import logging as hf_logging

    # as the command set them: warnings hidden unless --verbose, transformers' per-file bars off
    quiet = (hf_logging.get_verbosity() >= hf_logging.ERROR, not hf_logging.is_progress_bar_enabled())
    ctx = multiprocessing.get_context("spawn")
    results, keys = {}, list(calls)
    for start in range(0, len(keys), workers):
        batch = keys[start:start + workers]
        queue = ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(key, calls[key], quiet, queue), name=f"probe-{key}")
                 for key in batch]
        try:
            for proc in procs:
                proc.start()
            while len(results) < start + len(batch):
                try:
                    key, ok, value = queue.get(timeout=2.0)
                except Empty:  # a worker killed from outside (out of memory, a signal) sends nothing
                    dead = [(k, p) for k, p in zip(batch, procs, strict=True) if p.exitcode is not None
                            and k not in results]
                    if dead:
                        raise RuntimeError(f"probe worker {dead[0][1].name} stopped (exit code "
                                           f"{dead[0][1].exitcode}) before it sent its result") from None
                    continue
                if not ok:
                    raise value
                results[key] = value
        except BaseException:
            from reweightlab.recipes.train_pool import stop

            stop(procs)
            raise
        for proc in procs:
            proc.join()
    return results


def _worker(key, args, quiet: tuple[bool, bool], queue) -> None:
    """A probe worker's body: its result, or its error (picklable, else described), back to the parent."""
    try:
        _worker_setup(quiet)
        queue.put((key, True, _probe_rule(*args)))
    except KeyboardInterrupt:  # stopped by the parent: its clean-up has run, nothing more to say
        pass
    except BaseException as exc:  # noqa: BLE001 (any error is the parent's to raise)
        import pickle

        try:
            pickle.dumps(exc)
        except Exception:  # noqa: BLE001
            exc = RuntimeError(f"probe worker {key}: {type(exc).__name__}: {exc}")
        queue.put((key, False, exc))


def _worker_setup(quiet: tuple[bool, bool]) -> None:
    """A probe worker: denormals flushed; third-party warnings and per-file bars hidden as the command
    hid them (``quiet``: warnings, bars)."""
    from reweightlab.quiet import quiet_third_parties

    torch.set_flush_denormal(True)
    quiet_third_parties(warnings=quiet[0], bars=quiet[1])


def _probe_all(models: dict, budget: DemoBudget, variants, seed: int, progress: bool, out: Path, log):
    """`reweightlab probe` on the base and every trained model, once per rule; the per-model figures
    go into summary['eval'], each with its comparison against the base (intervals over prompts). The
    rules are probed side by side in worker processes (probe_workers); each rule's result depends only
    on its own seeds, so the figures are those of probing them one after the other."""
    results: dict = {name: {} for name in models}
    probe: dict = {}
    trained = {name: path for name, path in models.items() if name != "base"}
    data_file = is_data_file(budget.task)
    plan = {}
    for variant in variants:
        plan[variant] = ProbeSettings(
            task=budget.task, reward=budget.reward or None, success_threshold=budget.success_threshold,
            variant=variant, num_prompts=budget.eval_prompts, n=budget.eval_samples,
            thresholds=RegimeThresholds(budget_K=budget.eval_samples), search=budget.search,
            seed=seed + PROBE_SEED_OFFSET, betas=(RL_KL_BETA, 0.3, 3.0), max_new_tokens=budget.max_new_tokens,
            revision_attempts=1 if data_file else budget.revision_attempts, revision_episodes=budget.revision_episodes,
        )
    workers = probe_workers(variants, budget.task)
    log(f"probing {len(models)} models under {len(variants)} rule(s)"
        + (f", {workers} rules side by side in worker processes" if workers > 1 else ""))
    if workers == 1:
        done = {v: run_probe(models["base"], trained, plan[v], out / f"probe-{v}", progress=progress,
                             log=lambda *_: None) for v in variants}
    else:
        threads = max(1, torch.get_num_threads() // workers)
        done = _side_by_side({v: (models["base"], trained, plan[v], out / f"probe-{v}", threads) for v in variants},
                             workers)
    for variant in variants:
        settings, p = plan[variant], done[variant]
        beta = f"{settings.beta:g}"
        for name, m in p["per_model"].items():
            results[name][variant] = {k: m[k] for k in ("pass_at_k", "pass_at_k_ci95", "mean_reward",
                                                         "sample_tokens_per_s", "regimes", "diversity",
                                                         "failure_kinds")}
            if m.get("revision"):
                r = m["revision"]
                results[name][variant]["revision"] = {k: r[k] for k in (
                    "success_first_attempt", "success_within_episode", "revision_gain", "found_by_revision")}
            if name != "base":
                results[name][variant] |= vs_base_figures(p["vs_base"][name], beta)
                if p["vs_base"][name].get("revision"):
                    results[name][variant]["delta_within_episode"] = (
                        p["vs_base"][name]["revision"]["delta_success_within_episode"])
            else:
                results[name][variant]["free_energy_gap"] = m["free_energy"][beta]["gap"]
        probe[variant] = {"dir": f"probe-{variant}", "seconds": p["seconds"], "estimator": p["estimator"],
                          "beta": settings.beta}
        log(f"probed {len(models)} models ({variant.upper()} rule) in {p['seconds']:.0f} s")
    return results, probe


def format_claims(claims: dict) -> str:
    """The claims as the terminal shows them: one block per claim, its verdict and parts."""
    lines = ["", "claims (verdict rule: README 'The study'; intervals over training seeds and prompts)"]
    for c in claims["claims"]:
        lines.append(f"  {c['title']}: {c['verdict'].upper()}")
        lines.append(f"    paper: {c['paper_figure']}")
        lines.append(f"    ours:  {c['ours']}")
        for p in c["parts"]:
            lo, hi = p["ci95"]
            iv = "" if lo is None else f" [{lo:+.4f}, {hi:+.4f}]"
            val = "-" if p["value"] is None else f"{p['value']:+.4f}"
            lines.append(f"    - {p['name']} ({p['kind']}): {val}{iv} -> {p['verdict']}")
        if c["verdict"] == "not run":
            lines.append(f"    ({c['why']})")
    return "\n".join(lines)


def recompute_claims(folder: str | Path, log=print) -> dict:
    """claims.json again from a study folder's own files (summary.json, curves.json, probe-*/): the claims
    are a function of those files alone, so a changed rule or text can be re-applied without retraining."""
    folder = Path(folder)
    for name in ("summary.json", "curves.json"):
        if not (folder / name).is_file():
            raise ConfigError(f"{folder} holds no {name}: not a study folder (reweightlab study / demo writes one)")
    summary = json.loads((folder / "summary.json").read_text())
    curves = json.loads((folder / "curves.json").read_text())
    if "base_parameters" not in summary and (Path(summary["base_model"]) / "config.json").is_file():
        summary["base_parameters"] = sum(p.numel() for p in load_model(summary["base_model"]).parameters())
    claims = claims_mod.compute_claims(folder, summary, curves)
    write_text_atomic(folder / "claims.json", json.dumps(claims, indent=2))
    log(format_claims(claims))
    return claims
