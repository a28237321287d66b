"""The `reweightlab` command."""

from __future__ import annotations

import argparse
import sys

from reweightlab import __version__


def _cmd_pretrain(args) -> None:
    from dataclasses import replace

    from reweightlab.models.pretrain import QUICK_SPEC, PretrainSpec, ensure_embedded, pretrain

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
    from reweightlab.config import describe_fields, load_config

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
    from reweightlab.train.loop import train

    run_dir = train(cfg, progress=not args.no_progress)
    print(f"run folder: {run_dir} (final model in {run_dir / 'final'})")


def _cmd_demo(args) -> None:
    from reweightlab.demo import run_demo

    run_demo(args.out, quick=args.quick, seed=args.seed, progress=not args.no_progress)


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
    de.add_argument("--quick", action="store_true", help="a 2-minute version with tiny budgets")
    de.add_argument("--out", default="runs", help="parent folder of the run folder")
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--no-progress", action="store_true")
    de.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    from reweightlab.config import ConfigError
    from reweightlab.models import ModelLoadError

    args = build_parser().parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-file load/save bars drown ours; we show progress per stage
    user_errors: tuple[type[BaseException], ...] = (ConfigError, ModelLoadError, FileExistsError)
    try:
        from reweightlab.tasks.registry import UnknownTaskError
        from reweightlab.train.loop import RunFolderError

        user_errors += (UnknownTaskError, RunFolderError)
    except ImportError:  # pragma: no cover - only while the package is half-installed
        pass
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
