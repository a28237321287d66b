"""What a command hides of the libraries it runs (stdlib only at import: it runs before they load)."""

from __future__ import annotations

QUIET_MODULES = ("transformers", "torch", "accelerate", "peft", "huggingface_hub", "safetensors")


def quiet_third_parties(*, warnings: bool, bars: bool) -> None:
    """What a command hides of the libraries it runs, in its own process or a worker's: with
    ``warnings``, their ``warnings`` (a transformers FutureWarning about an argument name, torch's
    notes) and transformers' log below errors; with ``bars``, transformers' per-file load/save bars.
    Our own messages are printed lines, not ``warnings``, so they stay."""
    if warnings:  # before transformers is imported: its import can warn too
        import warnings as _warnings

        for module in QUIET_MODULES:
            _warnings.filterwarnings("ignore", module=module)
        _warnings.filterwarnings("ignore", category=FutureWarning)
    from transformers.utils import logging as hf_logging

    if warnings:
        hf_logging.set_verbosity_error()
    if bars:
        hf_logging.disable_progress_bar()
