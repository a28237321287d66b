"""`reweightlab control collect ENV` and `reweightlab control run ENV --data FILE` (argument parsing only;
the work is in collect.py and run.py).

Settings come from the package's one mechanism (reweightlab.config): the flags are generated from the
fields of ``CollectSettings`` and ``RunSettings`` (their help and defaults written there, once), and
``--config FILE`` and trailing ``key=value`` overrides set the same keys (file < overrides < flags).
The parser is built on every `reweightlab` call, so nothing imported here may need gymnasium, MuJoCo
or stable-baselines3 (the ``control`` extra); those are imported when a command runs.
"""

from __future__ import annotations

import argparse

_CONFIG_HELP = "a YAML or TOML file of these settings (keys as the flags, with underscores); overrides and flags win"


class _OverridesParser(argparse.ArgumentParser):
    """Takes ``key=value`` overrides after the options too. Plain argparse rejects
    ``run ENV --data F steps=3``: its first positional chunk (``ENV``) already fills the ``*`` positional,
    empty, so a later ``steps=3`` is left over; here such leftovers join the overrides, in order."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        late = [a for a in extras if "=" in a and not a.startswith("-")]
        if late and hasattr(namespace, "overrides"):
            namespace.overrides = [*namespace.overrides, *late]
            extras = [a for a in extras if a not in late]
        return namespace, extras


def _common(parser: argparse.ArgumentParser, example: str) -> None:
    parser.add_argument("env", metavar="ENV", help="a gymnasium id, e.g. Pendulum-v1 or Hopper-v5")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=f"a setting by its key, e.g. {example}")
    parser.add_argument("--config", metavar="FILE", help=_CONFIG_HELP)


def add_control_parser(sub, full: bool = True) -> None:
    """``full``: with its subcommands and flags (their settings import torch); else the entry alone, for
    the top-level help of a call that runs another command."""
    co = sub.add_parser("control", help="continuous control from offline data: BC, SFT (top 10%%), SFT(Q), "
                                        "iw-SFT(Q) on gymnasium environments")
    if not full:
        return
    from reweightlab.config import add_flags
    from reweightlab.control.collect import CollectSettings
    from reweightlab.control.run import RunSettings

    csub = co.add_subparsers(dest="control_command", required=True, parser_class=_OverridesParser)

    cc = csub.add_parser("collect", help="build a mixed-quality dataset here (Pendulum-v1: a controller plus "
                                         "noise; MuJoCo: snapshots of a PPO agent trained here); needs the "
                                         "'control' extra")
    _common(cc, "episodes=50")
    cc.add_argument("--out", help="the .npz dataset file (default data/<ENV>.npz)")
    add_flags(cc, CollectSettings)
    cc.set_defaults(func=_collect)

    cr = csub.add_parser("run", help="train BC, SFT, SFT(Q), iw-SFT(Q) on one dataset with one budget, over "
                                     "several seeds; write DIR/control.json and print a table")
    _common(cr, "steps=2000 iw_refresh_every=1")
    cr.add_argument("--data", required=True, help="a dataset file from `control collect` (or the same format), "
                    "or minari:ID / minari:FOLDER for a Minari dataset on disk")
    cr.add_argument("--out", help="output folder (default runs/control-<ENV>-<time>)")
    cr.add_argument("--no-progress", action="store_true")
    add_flags(cr, RunSettings)
    cr.set_defaults(func=_run)


def _load(cls, args):
    from reweightlab.config import flag_values, load

    return load(cls, args.config, args.overrides, flag_values(args, cls))


def _collect(args) -> None:
    from pathlib import Path

    from reweightlab.control.collect import CollectSettings, collect
    from reweightlab.control.dataset import return_stats, save_dataset

    settings, user_keys = _load(CollectSettings, args)
    out = Path(args.out) if args.out else Path("data") / f"{args.env}.npz"
    print(f"[control] collecting {args.env} -> {out}")
    data = collect(args.env, settings, user_keys=user_keys)
    save_dataset(out, data)
    st = return_stats(data.returns_E)
    print(f"[control] {st['episodes']} episodes, {len(data.rew_N)} transitions; returns min {st['min']:.1f}, "
          f"quartiles {st['q25']:.1f} / {st['median']:.1f} / {st['q75']:.1f}, max {st['max']:.1f} "
          f"({data.metadata['collect_seconds']:.0f} s)")
    print(f"saved to {out}")


def _run(args) -> None:
    from datetime import datetime
    from pathlib import Path

    from reweightlab.control.run import RunSettings, run_control

    settings, _ = _load(RunSettings, args)
    out = Path(args.out) if args.out else Path("runs") / f"control-{args.env}-{datetime.now():%Y%m%d-%H%M%S}"
    run_control(args.env, args.data, out, settings, progress=not args.no_progress)
