"""claims.json (version 1, written by `reweightlab study`): the paper's claims, each with our verdict, the
parts that decided it (each with its 95% interval) and the figures that show it, as plain data.

Only read and checked here: a missing key or a value of the wrong type is a ReportError that names the
file and where in it (`claims[1] (id 'b').verdict`). The figures are generic specs (`LinesFigure`,
`IntervalsFigure`, `BarsFigure`) that claims_figures.py draws; nothing is computed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from reweightlab.report.load import ReportError

CLAIMS_FILE = "claims.json"
VERSION = 1
VERDICTS = ("supported", "not supported", "inconclusive", "not run")
PART_KINDS = ("greater", "less", "at_least", "at_most")
Cell = str | int | float | None


@dataclass(frozen=True)
class Rule:
    """How a verdict is reached: the sentence the page shows, and the numbers behind it (where given)."""

    text: str
    confidence: float | None = None
    margin: float | None = None
    resamples: int | None = None
    interval: str | None = None


@dataclass(frozen=True)
class SeedValue:
    seed: int
    value: float | None
    lo: float | None
    hi: float | None


@dataclass(frozen=True)
class Part:
    """One tested quantity of a claim: its value pooled over seeds, its 95% interval, and each seed's."""

    name: str
    quantity: str
    kind: str  # one of PART_KINDS
    value: float | None
    lo: float | None
    hi: float | None
    per_seed: tuple[SeedValue, ...]
    verdict: str


@dataclass(frozen=True)
class Series:
    name: str
    x: tuple[float | None, ...]
    y: tuple[float | None, ...]
    lo: tuple[float | None, ...] | None = None
    hi: tuple[float | None, ...] | None = None
    dashed: bool = False
    marker: bool = False


@dataclass(frozen=True)
class LinesFigure:
    title: str
    x_label: str
    y_label: str
    x_log: bool
    series: tuple[Series, ...]
    vlines: tuple[tuple[float, str], ...] = ()


@dataclass(frozen=True)
class IntervalRow:
    name: str
    value: float | None
    lo: float | None
    hi: float | None


@dataclass(frozen=True)
class IntervalsFigure:
    """A forest plot: one point with its interval per row, a line at 0, `band` shaded lightly."""

    title: str
    x_label: str
    rows: tuple[IntervalRow, ...]
    band: tuple[float, float] | None = None


@dataclass(frozen=True)
class BarSeries:
    name: str
    values: tuple[float | None, ...]


@dataclass(frozen=True)
class BarsFigure:
    title: str
    y_label: str
    categories: tuple[str, ...]
    series: tuple[BarSeries, ...]


FigureSpec = LinesFigure | IntervalsFigure | BarsFigure


@dataclass(frozen=True)
class Table:
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Claim:
    id: str
    title: str
    source: str
    statement: str
    paper_figure: str
    ours: str
    verdict: str  # one of VERDICTS
    why: str
    how_to_read: tuple[str, ...]
    differs: str
    parts: tuple[Part, ...]
    figures: tuple[FigureSpec, ...]
    tables: tuple[Table, ...] = ()
    reference: tuple[Part, ...] = ()  # optional "reference": parts shown for comparison, not in the verdict


@dataclass(frozen=True)
class Claims:
    rule: Rule
    budget_unit: str
    claims: tuple[Claim, ...]


class _Bad(Exception):
    """A problem at `where` in the file; read_claims adds the file's path."""

    def __init__(self, where: str, what: str):
        super().__init__(f"{where}: {what}" if where else what)


def _type_name(x) -> str:
    return "null" if x is None else type(x).__name__


def _get(obj: dict, key: str, where: str, kind: type | tuple[type, ...], *, optional: bool = False,
         nullable: bool = False, default=None):
    """obj[key], checked to be of `kind` (bool is not a number); `optional`: absent -> default."""
    at = f"{where}.{key}" if where else key
    if key not in obj:
        if optional:
            return default
        raise _Bad(where, f"missing key {key!r}")
    x = obj[key]
    if x is None and nullable:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    numeric = any(k in (int, float) for k in kinds)
    if not isinstance(x, kinds) or (numeric and isinstance(x, bool) and bool not in kinds):
        raise _Bad(at, f"expected {' or '.join(k.__name__ for k in kinds)}{' or null' if nullable else ''}, "
                       f"found {_type_name(x)} {json.dumps(x)[:60]}")
    return x


def _obj(x, where: str) -> dict:
    if not isinstance(x, dict):
        raise _Bad(where, f"expected an object, found {_type_name(x)}")
    return x


def _items(obj: dict, key: str, where: str, *, optional: bool = False) -> list[tuple[str, object]]:
    """A list under `key`, each item with its own location ("where.key[i]")."""
    xs = _get(obj, key, where, list, optional=optional, default=[])
    at = f"{where}.{key}" if where else key
    return [(f"{at}[{i}]", x) for i, x in enumerate(xs)]


def _num(x, where: str, *, nullable: bool = True) -> float | None:
    """A number; NaN (which Python's json writes and reads) and infinities are undefined, like null."""
    if x is None and nullable:
        return None
    if isinstance(x, bool) or not isinstance(x, int | float) or (not nullable and not math.isfinite(x)):
        raise _Bad(where, f"expected a {'number or null' if nullable else 'finite number'}, found {_type_name(x)}")
    return float(x) if math.isfinite(x) else None


def _nums(x, where: str, *, nullable: bool = True) -> tuple[float | None, ...]:
    if not isinstance(x, list):
        raise _Bad(where, f"expected a list of numbers, found {_type_name(x)}")
    return tuple(_num(v, f"{where}[{i}]", nullable=nullable) for i, v in enumerate(x))


def _pair(x, where: str) -> tuple[float | None, float | None]:
    if not isinstance(x, list) or len(x) != 2:
        raise _Bad(where, f"expected [low, high], found {json.dumps(x)[:60]}")
    lo, hi = _nums(x, where)
    return lo, hi


def _strings(obj: dict, key: str, where: str) -> tuple[str, ...]:
    out = []
    for at, s in _items(obj, key, where):
        if not isinstance(s, str):
            raise _Bad(at, f"expected a string, found {_type_name(s)}")
        out.append(s)
    return tuple(out)


def _one_of(value: str, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise _Bad(where, f"{value!r} is not one of {', '.join(map(repr, allowed))}")
    return value


def _part(raw, where: str) -> Part:
    p = _obj(raw, where)
    lo, hi = _pair(_get(p, "ci95", where, list), f"{where}.ci95")
    seeds = []
    for at, s in _items(p, "per_seed", where):
        s = _obj(s, at)
        s_lo, s_hi = _pair(_get(s, "ci95", at, list), f"{at}.ci95")
        seeds.append(SeedValue(_get(s, "seed", at, int), _num(_get(s, "value", at, (int, float), nullable=True), at),
                               s_lo, s_hi))
    return Part(_get(p, "name", where, str), _get(p, "quantity", where, str),
                _one_of(_get(p, "kind", where, str), PART_KINDS, f"{where}.kind"),
                _num(_get(p, "value", where, (int, float), nullable=True), where), lo, hi, tuple(seeds),
                _get(p, "verdict", where, str))


def _series(raw, where: str) -> Series:
    s = _obj(raw, where)
    x = _nums(_get(s, "x", where, list), f"{where}.x")  # a point without an x is left out, like one without a y
    y = _nums(_get(s, "y", where, list), f"{where}.y")
    bounds = []
    for key in ("lo", "hi"):
        b = _get(s, key, where, list, optional=True, nullable=True)
        bounds.append(None if b is None else _nums(b, f"{where}.{key}"))
    for key, ys in (("y", y), ("lo", bounds[0]), ("hi", bounds[1])):
        if ys is not None and len(ys) != len(x):
            raise _Bad(f"{where}.{key}", f"{len(ys)} values for {len(x)} x values")
    return Series(_get(s, "name", where, str), x, y, bounds[0], bounds[1],
                  _get(s, "dashed", where, bool, optional=True, default=False),
                  _get(s, "marker", where, bool, optional=True, default=False))


def _figure(raw, where: str) -> FigureSpec:
    f = _obj(raw, where)
    kind = _one_of(_get(f, "kind", where, str), ("lines", "intervals", "bars"), f"{where}.kind")
    title = _get(f, "title", where, str)
    if kind == "lines":
        vlines = tuple((_num(_get(_obj(v, at), "x", at, (int, float)), at, nullable=False),
                        _get(v, "label", at, str)) for at, v in _items(f, "vlines", where, optional=True))
        return LinesFigure(title, _get(f, "x_label", where, str), _get(f, "y_label", where, str),
                           _get(f, "x_log", where, bool), tuple(_series(s, at) for at, s in _items(f, "series", where)),
                           vlines)
    if kind == "intervals":
        rows = []
        for at, r in _items(f, "rows", where):
            r = _obj(r, at)
            rows.append(IntervalRow(_get(r, "name", at, str),
                                    *(_num(_get(r, k, at, (int, float), nullable=True), f"{at}.{k}")
                                      for k in ("value", "lo", "hi"))))
        band = _get(f, "band", where, list, optional=True, nullable=True)
        band = None if band is None else _pair(band, f"{where}.band")
        if band is not None and None in band:
            raise _Bad(f"{where}.band", "expected two numbers")
        return IntervalsFigure(title, _get(f, "x_label", where, str), tuple(rows), band)
    categories = _strings(f, "categories", where)
    series = []
    for at, s in _items(f, "series", where):
        s = _obj(s, at)
        values = _nums(_get(s, "values", at, list), f"{at}.values")
        if len(values) != len(categories):
            raise _Bad(f"{at}.values", f"{len(values)} values for {len(categories)} categories")
        series.append(BarSeries(_get(s, "name", at, str), values))
    return BarsFigure(title, _get(f, "y_label", where, str), categories, tuple(series))


def _table(raw, where: str) -> Table:
    t = _obj(raw, where)
    columns = _strings(t, "columns", where)
    rows = []
    for at, row in _items(t, "rows", where):
        if not isinstance(row, list) or len(row) != len(columns):
            raise _Bad(at, f"expected a list of {len(columns)} cells (one per column), found {json.dumps(row)[:60]}")
        for j, cell in enumerate(row):
            if cell is not None and (isinstance(cell, bool) or not isinstance(cell, str | int | float)):
                raise _Bad(f"{at}[{j}]", f"expected a string, a number or null, found {_type_name(cell)}")
        rows.append(tuple(row))
    return Table(_get(t, "title", where, str), columns, tuple(rows))


def _claim(raw, where: str) -> Claim:
    c = _obj(raw, where)
    if isinstance(c.get("id"), str):
        where = f"{where} (id {c['id']!r})"
    text = {k: _get(c, k, where, str) for k in ("id", "title", "source", "statement", "paper_figure", "ours",
                                                 "verdict", "why", "differs")}
    _one_of(text["verdict"], VERDICTS, f"{where}.verdict")
    return Claim(**text, how_to_read=_strings(c, "how_to_read", where),
                 parts=tuple(_part(p, at) for at, p in _items(c, "parts", where)),
                 figures=tuple(_figure(f, at) for at, f in _items(c, "figures", where)),
                 tables=tuple(_table(t, at) for at, t in _items(c, "tables", where, optional=True)),
                 reference=tuple(_part(p, at) for at, p in _items(c, "reference", where, optional=True)))


def read_claims(path: Path) -> Claims:
    """claims.json into `Claims`; raises ReportError naming the file and the key that is missing or bad."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path} is not valid JSON: {exc}") from None
    try:
        data = _obj(data, "")
        version = _get(data, "version", "", int)
        if version != VERSION:
            raise _Bad("version", f"{version}: this report reads version {VERSION}")
        rule = _obj(_get(data, "rule", "", dict), "rule")
        claims = Claims(
            Rule(_get(rule, "text", "rule", str),
                 _num(_get(rule, "confidence", "rule", (int, float), optional=True), "rule.confidence"),
                 _num(_get(rule, "margin", "rule", (int, float), optional=True), "rule.margin"),
                 _get(rule, "resamples", "rule", int, optional=True),
                 _get(rule, "interval", "rule", str, optional=True)),
            _get(_get(data, "budget", "", dict), "unit", "budget", str),
            tuple(_claim(c, at) for at, c in _items(data, "claims", "")))
    except _Bad as exc:
        raise ReportError(f"{path}: {exc}") from None
    ids = [c.id for c in claims.claims]
    if len(set(ids)) != len(ids):
        raise ReportError(f"{path}: claims: the id {next(i for i in ids if ids.count(i) > 1)!r} appears twice")
    return claims
