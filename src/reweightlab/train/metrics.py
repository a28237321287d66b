"""The run's metrics file: one JSON line per logged step, each written and flushed in one piece."""

from __future__ import annotations

import json
from pathlib import Path


class MetricsWriter:
    """Appends one JSON line per call; each line is written and flushed in one piece."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict) -> None:
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


class NullMetrics:
    """The metrics writer of a process other than rank 0: writes nothing."""

    def write(self, record: dict) -> None:
        pass

    def close(self) -> None:
        pass
