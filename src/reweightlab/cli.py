"""The `reweightlab` command."""

from __future__ import annotations

import argparse
import sys

from reweightlab import __version__


def _cmd_pretrain(args) -> None:
    from dataclasses import replace

    from reweightlab.recipes.pretrain import QUICK_SPEC, PretrainSpec, ensure_embedded, pretrain

    spec = QUICK_SPEC if args.quick else PretrainSpec()
    if args.steps:
        spec = replace(spec, steps=args.steps)
    if args.out:
        from pathlib import Path

        meta = pretrain(spec, Path(args.out), progress=not args.no_progress)
        print(f"saved to {args.out} ({meta['parameters']} parameters)")
        return
    path = ensure_embedded(spec, progress=not args.no_progress)
    print(f"embedded model: {path}")


def _cmd_train(args) -> None:
    from reweightlab.train.config import describe_fields, load_config

    if args.help_config:
        for key, default, help_ in describe_fields():
            print(f"{key:<34} {default:<22} {help_}")
        return
    if not args.config and not args.overrides:
        raise SystemExit("error: reweightlab train needs a CONFIG file (or key=value overrides); see --help-config")
    config, overrides = args.config, list(args.overrides)
    if config and "=" in config:  # only overrides were given
        overrides.insert(0, config)
        config = None
    cfg = load_config(config, overrides)
    from reweightlab.recipes.pretrain import resolve_model_path
    from reweightlab.train.loop import check_run_dir, train

    check_run_dir(cfg.output_dir)  # before building the embedded model, which can take minutes
    model_dir = resolve_model_path(cfg.model.path, progress=not args.no_progress)
    run_dir = train(cfg, progress=not args.no_progress, model_dir=model_dir)
    print(f"run folder: {run_dir} (final model in {run_dir / 'final'})")


def _cmd_demo(args) -> None:
    from reweightlab.recipes.demo import load_budget, run_demo

    if args.help_config:
        print(_demo_keys())
        return
    budget = load_budget(args.quick, args.config, args.overrides)
    run_demo(args.out, quick=args.quick, seed=args.seed, progress=not args.no_progress, budget=budget)


def _demo_keys() -> str:
    from reweightlab.config import describe
    from reweightlab.recipes.demo import DemoBudget

    rows = [r for r in describe(DemoBudget) if not r[0].startswith("pretrain.arch.")]
    return "budget keys (key=value or --config FILE):\n" + "\n".join(
        f"  {k:<30} {d:<10} {h}" for k, d, h in rows)


def _number_list(kind, example: str):
    """An argparse type: comma-separated numbers of ``kind`` (int or float), at least one."""
    what = "integers" if kind is int else "numbers"

    def parse(text: str) -> tuple:
        try:
            xs = tuple(kind(x) for x in text.split(",") if x.strip())
        except ValueError:
            msg = f"expected comma-separated {what} such as {example}; got {text!r}"
            raise argparse.ArgumentTypeError(msg) from None
        if not xs:
            raise argparse.ArgumentTypeError("the list is empty")
        return xs

    return parse


_ks = _number_list(int, "1,2,4,8")
_floats = _number_list(float, "0.1,1,3")


def _cmd_probe(args) -> None:
    from datetime import datetime
    from pathlib import Path

    from reweightlab.probe.command import parse_trained, run_probe
    from reweightlab.probe.regimes import RegimeThresholds
    from reweightlab.probe.search import SearchBudget
    from reweightlab.probe.study import ProbeError, ProbeSettings

    try:
        thresholds = RegimeThresholds(theta_basin=args.theta_basin, budget_K=args.budget_k, delta=args.delta,
                                      floor=args.floor)
        search = None if args.no_search else SearchBudget(beam_width=args.search_beams, expand_top=args.search_expand,
                                                          max_new_tokens=args.max_new_tokens)
    except ValueError as exc:
        raise ProbeError(str(exc)) from None
    settings = ProbeSettings(
        task=args.task, reward=args.reward, reward_timeout=args.reward_timeout,
        success_threshold=args.success_threshold, chat_template=args.chat_template, variant=args.split,
        prompt_split=args.prompts,
        num_prompts=args.num_prompts, n=args.n,
        ks=args.k or (), thresholds=thresholds, estimator=args.estimator, search=search, beta=args.beta,
        betas=tuple(args.betas) if args.betas is not None else ProbeSettings.betas,
        max_new_tokens=args.max_new_tokens, seed=args.seed, keep_per_prompt=min(args.keep, args.n),
        keep_samples=args.keep_samples, chunk_sequences=args.chunk, bootstrap=args.bootstrap, device=args.device,
    )
    out = Path(args.out) if args.out else Path("runs") / f"probe-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    run_probe(args.base, parse_trained(args.trained), settings, out, progress=not args.no_progress)


def _cmd_report(args) -> None:
    from pathlib import Path

    from reweightlab.report import write_report

    path = write_report([Path(d) for d in args.run_dirs], Path(args.out) if args.out else None)
    print(path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reweightlab", description="SFT and RL as reweighting of a reference model.")
    p.add_argument("--version", action="version", version=f"reweightlab {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    pt = sub.add_parser("pretrain", help="build the embedded GeneralPoints base model (cached)")
    pt.add_argument("--quick", action="store_true", help="the small quick-demo base (150 steps)")
    pt.add_argument("--steps", type=int, default=0, help="override the number of pretraining steps")
    pt.add_argument("--out", help="save here instead of the cache")
    pt.add_argument("--no-progress", action="store_true")
    pt.set_defaults(func=_cmd_pretrain)

    tr = sub.add_parser("train", help="post-train with one method from a YAML/TOML config")
    tr.add_argument("config", nargs="?", help="config file (.yaml, .yml or .toml)")
    tr.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=1e-4 rl.kl_beta=0.05")
    tr.add_argument("--help-config", action="store_true", help="list every config key with default and meaning")
    tr.add_argument("--no-progress", action="store_true")
    tr.set_defaults(func=_cmd_train)

    de = sub.add_parser("demo", help="pretrain, post-train with every method, evaluate; write runs/demo-*/")
    de.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="budget overrides, e.g. eval_samples=64")
    de.add_argument("--config", help="a YAML/TOML file of budget keys")
    de.add_argument("--help-config", action="store_true", help="list every budget key with default and meaning")
    de.add_argument("--quick", action="store_true", help="a 2-minute version with tiny budgets")
    de.add_argument("--out", default="runs", help="parent folder of the run folder")
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--no-progress", action="store_true")
    de.set_defaults(func=_cmd_demo)

    pr = sub.add_parser("probe", help="what did post-training do? pass@k, regimes, elicitation vs creation, "
                                      "KL to the base, free-energy gap; writes probe.json + probe_prompts.jsonl")
    pr.add_argument("--base", required=True, help="the base model folder (any Hugging Face causal LM)")
    pr.add_argument("--trained", action="append", default=[], metavar="[LABEL=]PATH",
                    help="a trained model folder; repeat for several")
    pr.add_argument("--task", default="generalpoints", help="a registered task name, or a .jsonl/.parquet data file")
    pr.add_argument("--reward", default=None, metavar="SPEC",
                    help="with a data file task: module:function, file.py:function or a built-in "
                         "(exact_match, numeric_match[:TOL], regex[:PATTERN], math_verify)")
    pr.add_argument("--reward-timeout", type=float, default=30.0, help="seconds a reward call may take")
    pr.add_argument("--success-threshold", type=float, default=1.0,
                    help="with a data file task: a sample succeeds when its reward >= this")
    pr.add_argument("--chat-template", default="auto", choices=("auto", "always"),
                    help="with a data file task: template conversations only (auto, TRL's convention) or "
                         "prompt/completion strings too (always)")
    pr.add_argument("--split", default="id", help="the task variant (GeneralPoints: id or ood rule)")
    pr.add_argument("--prompts", default="test", choices=("test", "train", "both"),
                    help="held-out (test) prompts, prompts seen in training (train), or half of each (both: every "
                         "model's pass@1 and each gain reported on the two halves apart)")
    pr.add_argument("--num-prompts", type=int, default=100,
                    help="prompts probed (GeneralPoints test hands are distinct value multisets: at most 125 ID, "
                         "174 OOD)")
    pr.add_argument("--n", type=int, default=256, help="samples per prompt (temperature 1)")
    pr.add_argument("--k", type=_ks, default=None, help="pass@k at these k, e.g. 1,2,4,8 (default: powers of 2 to n)")
    pr.add_argument("--budget-k", type=int, default=256,
                    help="regime budget K, at most n (p_budget = ln(1/delta)/K): the base's regimes come from K "
                         "samples of their own seed, a trained model's from the first K of its n samples")
    pr.add_argument("--estimator", default="sampling", choices=("sampling", "likelihood"),
                    help="whose regimes split the gains: sampled successes in K samples, or p_known (tasks that "
                         "list their solutions)")
    pr.add_argument("--theta-basin", type=float, default=0.1, help="p(x) from which a prompt is basin")
    pr.add_argument("--delta", type=float, default=0.05, help="miss probability allowed at p_budget")
    pr.add_argument("--floor", type=float, default=1e-12,
                    help="a singularity is 'improbable' if a known solution has likelihood above this, "
                         "else 'unreachable'")
    pr.add_argument("--beta", type=float, default=1.0, help="free-energy temperature of the headline figures")
    pr.add_argument("--betas", type=_floats, default=None, metavar="B1,B2,...",
                    help="further temperatures of the free-energy sweep (default 0.1,0.3,3; each trained model's "
                         "training kl_beta is added)")
    pr.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the prompts per interval")
    pr.add_argument("--keep-samples", action="store_true",
                    help="write every sampled completion (text, reward, reason, sampler log-prob) to samples/*.jsonl")
    pr.add_argument("--no-search", action="store_true", help="skip the verifier-guided search")
    pr.add_argument("--search-beams", type=int, default=32, help="search: prefixes kept per prompt")
    pr.add_argument("--search-expand", type=int, default=8, help="search: next tokens tried per prefix")
    pr.add_argument("--max-new-tokens", type=int, default=24)
    pr.add_argument("--keep", type=int, default=16, help="samples per prompt kept for the KL and free-energy estimates")
    pr.add_argument("--chunk", type=int, default=8192, help="sample at most this many sequences at once")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--device", default="cpu")
    pr.add_argument("--out", help="output folder (default runs/probe-<time>)")
    pr.add_argument("--no-progress", action="store_true")
    pr.set_defaults(func=_cmd_probe)

    rp = sub.add_parser("report", help="one self-contained HTML page (table, pass@k, training curves, regime "
                                       "transitions) from a demo, probe or control folder; two folders side by side")
    rp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a demo run folder or a probe --out folder")
    rp.add_argument("--out", help="the HTML file (default RUN_DIR/report.html; report-compare.html for several)")
    rp.set_defaults(func=_cmd_report)

    from reweightlab.control.command import add_control_parser

    add_control_parser(sub)  # `reweightlab control collect|run`
    return p


def main(argv: list[str] | None = None) -> int:
    from reweightlab.config import ConfigError
    from reweightlab.models import ModelLoadError

    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-file load/save bars drown ours; we show progress per stage
    user_errors: tuple[type[BaseException], ...] = (ConfigError, ModelLoadError, FileExistsError)
    try:
        from reweightlab.probe.study import ProbeError
        from reweightlab.report import ReportError
        from reweightlab.tasks.registry import UnknownTaskError
        from reweightlab.train.loop import RunFolderError

        user_errors += (UnknownTaskError, RunFolderError, ProbeError, ReportError)
        from reweightlab.tasks.dataset import DataError
        from reweightlab.tasks.formatting import FormatError
        from reweightlab.tasks.rewards import RewardError

        user_errors += (DataError, FormatError, RewardError)
    except ImportError:  # pragma: no cover - only while the package is half-installed
        pass
    from reweightlab.control.dataset import ControlError

    user_errors += (ControlError,)
    try:
        args.func(args)
    except user_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
