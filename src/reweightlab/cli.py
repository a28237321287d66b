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

        from reweightlab.files import check_new_folder

        check_new_folder(args.out, "--out")  # never over another model or anyone's files
        meta = pretrain(spec, Path(args.out), progress=not args.no_progress)
        print(f"saved to {args.out} ({meta['parameters']} parameters)")
        return
    from reweightlab.recipes.pretrain import PACKAGED_BASE

    path = ensure_embedded(spec, progress=not args.no_progress, rebuild=args.rebuild)
    where = ("shipped with the package, built from this recipe; --rebuild pretrains it again into the cache"
             if path == PACKAGED_BASE else "cached")
    print(f"embedded model: {path} ({where})")


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
    from reweightlab.train.loop import check_run_dir, overwrite_run_dir, train

    if args.resume and args.overwrite:
        raise SystemExit("error: --resume continues the run in output_dir and --overwrite replaces it: choose one")
    if args.overwrite:
        overwrite_run_dir(cfg.output_dir)
    if not args.resume:
        check_run_dir(cfg.output_dir)  # before building the embedded model, which can take minutes
    model_dir = resolve_model_path(cfg.model.path, progress=not args.no_progress)
    run_dir = train(cfg, progress=not args.no_progress, model_dir=model_dir, resume=args.resume)
    print(f"run folder: {run_dir} (final model in {run_dir / 'final'})")


def _cmd_demo(args) -> None:
    from reweightlab.recipes.demo import load_budget
    from reweightlab.recipes.study import run_study

    if args.help_config:
        print(_demo_keys())
        return
    budget = load_budget(args.quick, args.config, args.overrides)
    run_study(args.out, quick=args.quick, seed=args.seed, progress=not args.no_progress, budget=budget,
              name=args.command)


def _cmd_claims(args) -> None:
    from reweightlab.recipes.study import recompute_claims

    recompute_claims(args.run_dir)
    print(f"wrote {args.run_dir}/claims.json (run `reweightlab report {args.run_dir}` to redraw the page)")


def _demo_keys() -> str:
    from reweightlab.config import describe
    from reweightlab.recipes.demo import DemoBudget

    rows = [r for r in describe(DemoBudget) if not r[0].startswith("pretrain.arch.")]
    return "budget keys (key=value or --config FILE):\n" + "\n".join(
        f"  {k:<30} {d:<10} {h}" for k, d, h in rows)


def _cmd_probe(args) -> None:
    from reweightlab.probe.command import probe_from_cli

    probe_from_cli(args)


def _cmd_report(args) -> None:
    from pathlib import Path

    from reweightlab.report import write_report

    path = write_report([Path(d) for d in args.run_dirs], Path(args.out) if args.out else None)
    print(path)


def _add_study_parser(sub, name: str, help_: str) -> None:
    de = sub.add_parser(name, help=help_, description=help_ + ". Settings: --config FILE (base, task, reward, arms, "
                        "budgets), then KEY=VALUE overrides; --help-config lists every key.")
    de.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. eval_samples=64 base=DIR")
    de.add_argument("--config", help="a YAML/TOML file of study keys (base, task, reward, arms, budgets)")
    de.add_argument("--help-config", action="store_true", help="list every key with default and meaning")
    de.add_argument("--quick", action="store_true", help="tiny budgets: checks the machinery, not the science")
    de.add_argument("--out", default="runs", help="parent folder of the run folder")
    de.add_argument("--seed", type=int, default=0, help="added to every training seed")
    de.add_argument("--no-progress", action="store_true")
    de.set_defaults(func=_cmd_demo)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line. ``command``: the subcommand about to be parsed (``main`` passes it);
    the probe's flags, generated from its settings, import torch, so they are added only when that
    is ``probe`` or unknown (None): ``reweightlab --help`` and the other commands start in well
    under a second."""
    p = argparse.ArgumentParser(prog="reweightlab", description="SFT and RL as reweighting of a reference model.")
    p.add_argument("--version", action="version", version=f"reweightlab {__version__}")
    p.add_argument("--verbose", action="store_true", help="show third-party warnings and per-file progress bars "
                   "(transformers, torch), hidden by default; accepted anywhere on the command line")
    # every subcommand's --help shows its defaults
    sub = p.add_subparsers(dest="command", required=True,
                           parser_class=lambda **kw: argparse.ArgumentParser(
                               formatter_class=argparse.ArgumentDefaultsHelpFormatter, **kw))

    pt = sub.add_parser("pretrain", help="the embedded GeneralPoints base model (the default recipe's ships "
                                        "with the package; others are built and cached)")
    pt.add_argument("--quick", action="store_true", help="the small quick-demo base (150 steps)")
    pt.add_argument("--steps", type=int, default=0, help="override the number of pretraining steps")
    pt.add_argument("--out", help="save here instead of the cache")
    pt.add_argument("--rebuild", action="store_true",
                    help="pretrain into the cache even when the package ships this recipe's base (reproduces it)")
    pt.add_argument("--no-progress", action="store_true")
    pt.set_defaults(func=_cmd_pretrain)

    tr = sub.add_parser("train", help="post-train with one method from a YAML/TOML config")
    tr.add_argument("config", nargs="?", help="config file (.yaml, .yml or .toml)")
    tr.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=1e-4 rl.kl_beta=0.05")
    tr.add_argument("--help-config", action="store_true", help="list every config key with default and meaning")
    tr.add_argument("--resume", action="store_true",
                    help="continue the run in output_dir from its last checkpoint (same settings; checkpoint_every)")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace output_dir if it holds an earlier reweightlab run (never any other folder)")
    tr.add_argument("--no-progress", action="store_true")
    tr.set_defaults(func=_cmd_train)

    for cmd, help_ in (("study", "test the four claims (iw-SFT bound, SFT vs RL out of distribution, pass@k "
                                 "crossover, creation) on a base model and task: every arm x 3 seeds, probed; writes "
                                 "runs/study-*/claims.json and report.html"),
                       ("demo", "the study on the embedded model (shipped with the package): runs/demo-*/")):
        _add_study_parser(sub, cmd, help_)

    cl = sub.add_parser("claims", help="recompute claims.json of a study folder from its own files (no training)")
    cl.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by reweightlab study or demo")
    cl.set_defaults(func=_cmd_claims)

    pr = sub.add_parser("probe", help="what did post-training do? pass@k, regimes, elicitation vs creation, "
                                      "KL to the base, free-energy gap; writes probe.json + probe_prompts.jsonl",
                        description="Settings come from --config FILE, then KEY=VALUE overrides, then the flags "
                                    "below (each flag is a config key; its help and default follow).")
    if command in (None, "probe"):
        from reweightlab.probe.command import add_probe_arguments

        add_probe_arguments(pr)  # every flag generated from ProbeSettings' fields (reweightlab.config)
    pr.set_defaults(func=_cmd_probe)

    rp = sub.add_parser("report", help="one self-contained HTML page (table, pass@k, training curves, regime "
                                       "transitions) from a demo, probe or control folder; two folders side by side")
    rp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="a demo run folder or a probe --out folder")
    rp.add_argument("--out", help="the HTML file (default RUN_DIR/report.html; report-compare.html for several)")
    rp.set_defaults(func=_cmd_report)

    from reweightlab.control.command import add_control_parser

    add_control_parser(sub, full=command in (None, "control"))  # `reweightlab control collect|run`
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, so that it unwinds through the same clean-up
    as Ctrl-C (a KeyboardInterrupt): temporaries removed, untrained runs discarded, locks released."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum, _frame):
    raise Terminated(signum)


def _catch_termination() -> dict:
    """Handlers for SIGTERM/SIGHUP while a command runs (the main thread only, and only where nobody
    set one before us); returns the previous handlers, to put back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) in (signal.SIG_DFL, None):
            previous[sig] = signal.signal(sig, _raise_terminated)
    return previous


def main(argv: list[str] | None = None) -> int:
    import signal

    previous = _catch_termination()
    try:
        return _main(argv)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    verbose = "--verbose" in argv
    argv = [a for a in argv if a != "--verbose"]
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command if command is not None else "").parse_args(argv)  # --help ends here, fast
    from reweightlab.quiet import quiet_third_parties

    # library warnings and per-file load/save bars say nothing about the run: hidden unless --verbose
    # (the bars always: they drown ours; we show progress per stage)
    quiet_third_parties(warnings=not verbose, bars=True)
    from reweightlab.config import ConfigError
    from reweightlab.files import FolderError, StorageError, storage_reason
    from reweightlab.models import ModelLoadError

    user_errors: tuple[type[BaseException], ...] = (ConfigError, ModelLoadError, FileExistsError, FolderError,
                                                    StorageError)
    try:
        from reweightlab.algos.method import NothingToTrainError
        from reweightlab.probe.study import ProbeError
        from reweightlab.report import ReportError
        from reweightlab.tasks.registry import UnknownTaskError
        from reweightlab.train.loop import RunFolderError
        from reweightlab.train.step import NonFiniteError

        user_errors += (UnknownTaskError, RunFolderError, ProbeError, ReportError, NonFiniteError, NothingToTrainError)
        from reweightlab.data.lengths import TooLongError
        from reweightlab.tasks.dataset import DataError
        from reweightlab.tasks.formatting import FormatError
        from reweightlab.tasks.rewards import RewardError

        user_errors += (DataError, FormatError, RewardError, TooLongError)
    except ImportError:  # pragma: no cover - only while the package is half-installed
        pass
    from reweightlab.control.dataset import ControlError

    user_errors += (ControlError,)
    try:
        args.func(args)
    except BrokenPipeError:  # `reweightlab ... | head`: the reader left; nothing is wrong with the run
        sys.stderr.close()
        return 0
    except user_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Terminated as exc:
        import signal

        print(f"terminated ({signal.Signals(exc.signum).name})", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the disk refused a write somewhere we did not wrap: still one line
        reason = storage_reason(exc)
        if reason is None:
            raise
        where = getattr(exc, "filename", None)
        print(f"error: cannot write{f' {where}' if where else ''}: {reason}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
