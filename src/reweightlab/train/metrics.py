"""The run's metrics file: one JSON line per logged step, each written and flushed in one piece;
optionally mirrored to an experiment tracker (``report_to``) through accelerate's trackers."""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

from reweightlab.config import ConfigError, flatten

TRACKER_PACKAGES = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb", "mlflow": "mlflow"}
TRACKER_FOLDER = "tensorboard"  # run_dir/<this>/: where the TensorBoard event files go


class TrackerError(ConfigError):
    """report_to names a tracker whose package is not installed."""


class MetricsWriter:
    """Appends one JSON line per call; each line is written and flushed in one piece. With a
    ``tracker`` (an accelerate GeneralTracker, started), each line's numbers are logged to it too,
    at the line's step."""

    def __init__(self, path: str | Path, tracker=None):
        self.path = Path(path)
        self.tracker = tracker
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        if self.tracker is not None:
            values = {k: float(v) for k, v in record.items() if k != "step" and isinstance(v, numbers.Real)
                      and not isinstance(v, bool) and math.isfinite(float(v))}
            self.tracker.log(values, step=int(record["step"]))

    def close(self) -> None:  # idempotent: a run's every ending closes it
        self._fh.close()
        if self.tracker is not None:
            self.tracker.finish()
            self.tracker = None


class NullMetrics:
    """The metrics writer of a process other than rank 0: writes nothing."""

    def write(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass


def make_tracker(name: str, run_dir: Path, config: dict):
    """The started accelerate tracker for ``report_to`` (None for 'none'), its configuration stored.
    A missing package is a TrackerError naming it, raised before anything is trained."""
    if name == "none":
        return None
    check_tracker(name)
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    cls = LOGGER_TYPE_TO_CLASS[name]
    if name == "tensorboard":
        tracker = cls(run_name=".", logging_dir=str(run_dir / TRACKER_FOLDER))
    elif name == "mlflow":
        tracker = cls(experiment_name="reweightlab", run_name=run_dir.name)
    else:  # wandb, trackio: runs named after the run folder; where they store them is the package's setting
        tracker = cls(run_name=run_dir.name)
    tracker.start()
    tracker.store_init_configuration({k: v for k, v in flatten(config).items()
                                      if isinstance(v, (bool, int, float, str)) or v is None})
    return tracker


def check_tracker(name: str) -> None:
    if name != "none":
        import importlib.util

        if importlib.util.find_spec(TRACKER_PACKAGES[name]) is None:
            raise TrackerError(f"config key 'report_to': {name} needs the {TRACKER_PACKAGES[name]} package "
                               f"(pip install {TRACKER_PACKAGES[name]})")

