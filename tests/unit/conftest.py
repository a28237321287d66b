"""Fixtures shared by the report tests."""

from __future__ import annotations

import pytest

from reweightlab.report import figures


@pytest.fixture
def drawn(monkeypatch):
    """Every matplotlib Figure a report renders, by its picture's alt text (the last page's, where several
    are written)."""
    out: dict = {}
    original = figures._picture

    def keep(fig, alt):
        out[alt] = fig
        return original(fig, alt)

    monkeypatch.setattr(figures, "_picture", keep)
    return out
