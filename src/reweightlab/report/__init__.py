"""`reweightlab report`: run folders -> one self-contained HTML page (tables across seeds and per trained
model with 95% intervals, pass@k curves, gain against KL, support ratios, the free-energy sweep, training
curves, regime transitions, control results), opening with a study's claims and verdicts where the folder
holds claims.json (claims.py, claims_html.py). Reads files only; see load.py for what it reads."""

from __future__ import annotations

from pathlib import Path

from reweightlab.report.load import ReportError, RunData, load_run

__all__ = ["ReportError", "RunData", "load_run", "write_report"]


def write_report(run_dirs: list[Path], out: Path | None = None) -> Path:
    """Write the report of one run folder (default RUN_DIR/report.html) or of several side by side
    (default FIRST_RUN_DIR/report-compare.html) and return its path.

    Every file is read and every figure drawn before anything is written, and the write is atomic,
    so a failure leaves no partial page behind (an older report stays as it was)."""
    from reweightlab.files import write_text_atomic
    from reweightlab.report.html import render_page

    if not run_dirs:
        raise ReportError("no run folder given")
    runs = [load_run(d) for d in run_dirs]
    if out is None:
        out = Path(run_dirs[0]) / ("report.html" if len(runs) == 1 else "report-compare.html")
    out = Path(out)
    if not out.parent.is_dir():
        raise ReportError(f"cannot write {out}: the folder {out.parent} does not exist")
    page = render_page(runs)
    write_text_atomic(out, page)
    return out
