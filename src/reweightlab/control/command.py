"""`reweightlab control collect ENV` and `reweightlab control run ENV --data FILE` (argument parsing only;
the work is in collect.py and run.py). Light at import: the parser is built on every `reweightlab` call."""

from __future__ import annotations


def add_control_parser(sub) -> None:
    co = sub.add_parser("control", help="continuous control from offline data: BC, SFT (top 10%%), SFT(Q), "
                                        "iw-SFT(Q) on gymnasium environments")
    csub = co.add_subparsers(dest="control_command", required=True)

    cc = csub.add_parser("collect", help="build a mixed-quality dataset here (Pendulum-v1: a controller plus "
                                         "noise; MuJoCo: snapshots of a PPO agent trained here, needs the "
                                         "'control' extra)")
    cc.add_argument("env", metavar="ENV", help="a gymnasium id, e.g. Pendulum-v1 or Hopper-v5")
    cc.add_argument("--out", help="the .npz dataset file (default data/<ENV>.npz)")
    cc.add_argument("--episodes", type=int, default=None,
                    help="episodes to record (default 100 for Pendulum-v1, 200 for MuJoCo)")
    cc.add_argument("--train-steps", type=int, default=None,
                    help="MuJoCo: PPO training steps before the last snapshot (default 250000)")
    cc.add_argument("--seed", type=int, default=0)
    cc.set_defaults(func=_collect)

    cr = csub.add_parser("run", help="train BC, SFT, SFT(Q), iw-SFT(Q) on one dataset with one budget, over "
                                     "several seeds; write DIR/control.json and print a table")
    cr.add_argument("env", metavar="ENV")
    cr.add_argument("--data", required=True, help="a dataset file from `control collect` (or the same format), "
                    "or minari:ID / minari:FOLDER for a Minari dataset on disk")
    cr.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...)")
    cr.add_argument("--steps", type=int, default=None, help="Adam steps per method (default 1000)")
    cr.add_argument("--trajectories-per-step", type=int, default=None, help="whole trajectories per step (256)")
    cr.add_argument("--transitions-per-step", type=int, default=None,
                    help="transitions sampled from them for the loss (default 1024)")
    cr.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 3e-4)")
    cr.add_argument("--iw-refresh-every", type=int, default=None,
                    help="iw-SFT(Q): recompute q's log-probs every this many steps (default 10; 1 is exact)")
    cr.add_argument("--eval-episodes", type=int, default=10, help="seeded evaluation episodes per policy")
    cr.add_argument("--out", help="output folder (default runs/control-<ENV>-<time>)")
    cr.add_argument("--no-progress", action="store_true")
    cr.set_defaults(func=_run)


def _collect(args) -> None:
    from pathlib import Path

    from reweightlab.control.collect import collect
    from reweightlab.control.dataset import ControlError, return_stats, save_dataset

    if args.episodes is not None and args.episodes < 1:
        raise ControlError("--episodes must be >= 1")
    out = Path(args.out) if args.out else Path("data") / f"{args.env}.npz"
    print(f"[control] collecting {args.env} -> {out}")
    data = collect(args.env, episodes=args.episodes, seed=args.seed, train_steps=args.train_steps)
    save_dataset(out, data)
    st = return_stats(data.returns_E)
    print(f"[control] {st['episodes']} episodes, {len(data.rew_N)} transitions; returns min {st['min']:.1f}, "
          f"quartiles {st['q25']:.1f} / {st['median']:.1f} / {st['q75']:.1f}, max {st['max']:.1f} "
          f"({data.metadata['collect_seconds']:.0f} s)")
    print(f"saved to {out}")


def _run(args) -> None:
    from dataclasses import replace
    from datetime import datetime
    from pathlib import Path

    from reweightlab.control.dataset import ControlError
    from reweightlab.control.run import run_control
    from reweightlab.control.train import TrainSettings

    given = {"steps": args.steps, "trajectories_per_step": args.trajectories_per_step,
             "transitions_per_step": args.transitions_per_step, "lr": args.lr,
             "iw_refresh_every": args.iw_refresh_every}
    try:
        settings = replace(TrainSettings(), **{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise ControlError(str(exc)) from None
    out = Path(args.out) if args.out else Path("runs") / f"control-{args.env}-{datetime.now():%Y%m%d-%H%M%S}"
    run_control(args.env, args.data, out, seeds=args.seeds, settings=settings, eval_episodes=args.eval_episodes,
                progress=not args.no_progress)

