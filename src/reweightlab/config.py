"""One configuration mechanism for every command: frozen dataclasses whose fields document themselves.

A command's settings are a frozen dataclass (sections are nested dataclasses). Each field is made
with ``setting(default, help)``; enumerated values are ``Literal`` types (or ``choices=`` when the
allowed values are data, such as the registered methods). From that one description come:
  - a config file (YAML or TOML) and ``key.sub=value`` overrides, merged in that order;
  - command-line flags (``--num-prompts 64``), generated with their help and defaults;
  - optional sections (``search: SearchBudget | None``): ``null`` in a file, or a generated
    ``--no-<key>`` flag, turns the whole section off;
  - ``describe`` (key, default, help) for ``--help-config`` and the docs;
  - the checks of types and choices. Every problem is a ``ConfigError``: one line naming the key
    (and, for a file, the file) and what is allowed. Nothing is half-applied.
Which keys the user set is returned too: a setting that would do nothing is the command's own check.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tomllib
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, Literal


class ConfigError(ValueError):
    """A configuration problem, reported as one line naming the key."""


def setting(default, help: str, *, choices: tuple | None = None, flag: str | None = None,
            repeat: bool = False, needs: str | None = None, why: str = "", metavar: str | None = None) -> Any:
    """A documented field. ``flag``: its command-line name when not ``--<key-with-dashes>`` (for an
    optional section, the name of the flag that turns it off, ``--no-<key>`` by default); ``repeat``: a
    tuple field given as a repeated flag (``--trained A --trained B``); ``needs``: the key without which
    setting this one does nothing (``unmet_needs`` reports it; ``why`` explains); ``metavar``: the
    value's name in ``--help`` (the key in capitals by default)."""
    meta = {"help": help, "choices": choices, "flag": flag, "repeat": repeat, "needs": needs, "why": why,
            "metavar": metavar}
    if dataclasses.is_dataclass(default) and not isinstance(default, type):
        return field(default_factory=lambda: default, metadata=meta)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _choices(f: dataclasses.Field, tp) -> tuple | None:
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    return f.metadata.get("choices")


def _optional_inner(tp):
    """X for ``X | None``; None otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0]
        raise ConfigError(f"unsupported field type {tp}")
    return None


def optional_section(tp):
    """The section class of a ``Section | None`` field; None for any other type."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and dataclasses.is_dataclass(args[0]):
            return args[0]
    return None


def _number(value, kind, key: str, what: str):
    if isinstance(value, str):
        try:
            value = kind(value)
        except ValueError:
            pass
    ok = (int,) if kind is int else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok):
        raise ConfigError(f"config key '{key}': expected {what}, got {value!r}")
    return kind(value)


def coerce(value: Any, tp, key: str, choices: tuple | None = None):
    """``value`` (from a file, an override or a flag) as type ``tp``, or a ConfigError naming ``key``."""
    inner = _optional_inner(tp)
    if inner is not None:
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return coerce(value, inner, key, choices)
    if typing.get_origin(tp) is Literal:
        choices, tp = typing.get_args(tp), type(typing.get_args(tp)[0])
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        if not (len(args) == 2 and args[1] is Ellipsis) and len(value) != len(args):
            raise ConfigError(f"config key '{key}': expected {len(args)} values, got {len(value)}")
        return tuple(coerce(v, args[0], key, choices) for v in value)
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            value = value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise ConfigError(f"config key '{key}': expected true or false, got {value!r}")
    elif tp is int:
        value = _number(value, int, key, "an integer")
    elif tp is float:
        value = _number(value, float, key, "a number")
        if not math.isfinite(value):  # nan passes every range check and inf every lower bound: refuse both here
            raise ConfigError(f"config key '{key}': must be a finite number, got {value!r}")
    elif tp is str and not isinstance(value, str):
        raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    if choices is not None and value not in choices:
        raise ConfigError(f"config key '{key}': {value!r} is not one of {', '.join(map(str, choices))}")
    return value


def build(cls, raw: dict, prefix: str = ""):
    """An instance of ``cls`` from a (possibly partial) nested dict; unknown keys are errors."""
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        full = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key '{full}'; allowed: {', '.join(fields)}")
        tp = hints[key]
        section = optional_section(tp)
        if section is not None and value is None:  # an optional section turned off
            kwargs[key] = None
        elif dataclasses.is_dataclass(tp) or section is not None:
            if not isinstance(value, dict):
                off = " or null (off)" if section is not None else ""
                raise ConfigError(f"config key '{full}': expected a section (mapping){off}, got {value!r}")
            kwargs[key] = build(section or tp, value, full + ".")
        else:
            kwargs[key] = coerce(value, tp, full, _choices(fields[key], tp))
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:  # a dataclass's own check (__post_init__)
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config section '{prefix.rstrip('.') or cls.__name__}': {exc}") from None


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = d
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if nxt is None:  # a section the same source turned off: off wins (``--no-search --search-beams 4``)
            return
        if not isinstance(nxt, dict):
            raise ConfigError(f"config key '{key}': '{p}' is not a section")
        node = nxt
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> dict:
    """`key.sub=value` strings to a nested dict (values parsed as YAML scalars/lists)."""
    import yaml

    out: dict = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, text = item.split("=", 1)
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        _set_dotted(out, key.strip(), value)
    return out


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_config_file(path: str | Path) -> dict:
    """Read a YAML (.yaml/.yml) or TOML (.toml) file into a dict, with a clear error."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"config file {p}: expected a .yaml, .yml or .toml file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {p} is not valid: {exc}".replace("\n", " ")) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p}: expected a mapping at the top level")
    return data


def load(cls, path: str | Path | None = None, overrides=(), flags: dict | None = None):
    """(settings, the keys the user set): a file, then ``key=value`` overrides, then flags."""
    raw = read_config_file(path) if path else {}
    raw = merge(merge(raw, parse_overrides(list(overrides))), flags or {})
    try:
        return build(cls, raw), set(flatten(raw))
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in {path})" if path else str(exc)) from None


def _leaves(cls, prefix: str = ""):
    """(dotted key, field, type) of every non-section field, sections first-to-last. An optional
    section is a leaf too (its value can be None), followed by its own fields."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        section = optional_section(tp)
        if dataclasses.is_dataclass(tp):
            yield from _leaves(tp, f"{prefix}{f.name}.")
        elif section is not None:
            yield f"{prefix}{f.name}", f, tp
            yield from _leaves(section, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, tp


def _default_of(cls, key: str):
    """The default of ``key``; under an optional section that is off by default, its class's default."""
    obj = cls()
    *sections, name = key.split(".")
    for part in sections:
        tp = _hints(type(obj))[part]
        obj = getattr(obj, part)
        if obj is None:
            obj = optional_section(tp)()
    field = next((f for f in dataclasses.fields(obj) if f.name == name), None)
    if field is not None and field.default is not dataclasses.MISSING:
        return field.default  # as declared ('auto'), not as an instance may resolve it
    return getattr(obj, name)


def describe(cls) -> list[tuple[str, str, str]]:
    """(key, default, help) for every field: `--help-config` and the docs."""
    rows = []
    for key, f, tp in _leaves(cls):
        help_ = f.metadata.get("help", "")
        choices = _choices(f, tp)
        if choices:
            help_ += f" [{'|'.join(map(str, choices))}]"
        if optional_section(tp) is not None:
            default = "null" if _default_of(cls, key) is None else "on"
            rows.append((key, default, help_ + " (a section; null turns it off)"))
            continue
        rows.append((key, repr(_default_of(cls, key)), help_))
    return rows


def value_at(obj, key: str):
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def unmet_needs(settings, user_keys: set[str]) -> None:
    """A ConfigError for the first key the user set whose ``needs`` key is empty, zero or false."""
    for key, f, _tp in _leaves(type(settings)):
        needs = f.metadata.get("needs")
        if key not in user_keys or needs is None:
            continue
        value = value_at(settings, needs)
        if not value:
            how = f"with {needs} = {value}" if isinstance(value, (int, float)) else f"without {needs}"
            why = f" {f.metadata['why']}" if f.metadata.get("why") else ""
            raise ConfigError(f"config key '{key}' does nothing {how}{why}")


def flag_name(key: str, f: dataclasses.Field) -> str:
    return f.metadata.get("flag") or "--" + key.replace(".", "-").replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, cls, *, skip: tuple[str, ...] = ()) -> None:
    """A flag for every field of ``cls`` (but ``skip``), its help and default from the field itself.

    Flags leave unset keys out of the namespace (argparse.SUPPRESS), so ``flag_values`` returns only
    what the user typed: then file < overrides < flags, and "the user set this key" stays exact.
    """
    for key, f, tp in _leaves(cls):
        if key in skip:
            continue
        default = _default_of(cls, key)
        help_ = f.metadata.get("help", "").replace("%", "%%")
        choices = _choices(f, tp)
        name = flag_name(key, f)
        kw: dict[str, Any] = {"dest": key, "default": argparse.SUPPRESS}
        if optional_section(tp) is not None:  # one flag turns the section off; its fields get their own
            name = f.metadata.get("flag") or name.replace("--", "--no-", 1)
            kw.update(action="store_const", const=None)
            help_ = f"turn off {key}: {help_}"
        elif tp is bool:
            kw.update(action="store_const", const=not default)
            help_ += " (default: off)" if not default else ""
        else:
            kw.update(metavar=f.metadata.get("metavar") or key.rsplit(".", 1)[-1].upper())
            if f.metadata.get("repeat"):
                kw.update(action="append")
            if choices:
                help_ += f" [{'|'.join(map(str, choices))}]"
            if default not in ((), None, ""):
                help_ += f" (default: {','.join(map(str, default)) if isinstance(default, tuple) else default})"
        if f.metadata.get("flag") and optional_section(tp) is None:  # say the key a config file uses
            help_ += f" [key {key}]"
        parser.add_argument(name, help=help_, **kw)


def flag_values(namespace: argparse.Namespace, cls) -> dict:
    """The flags the user gave, as a nested dict of raw values (checked later by ``build``)."""
    out: dict = {}
    for key, _f, _tp in _leaves(cls):
        if hasattr(namespace, key):
            _set_dotted(out, key, getattr(namespace, key))
    return out


def check_device(key: str, name: str) -> None:
    """ConfigError unless ``name`` ('auto', 'cpu', 'cuda' or 'cuda:N') is a device this machine has."""
    import torch

    if name in ("auto", "cpu"):
        return
    if not (name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit())):
        raise ConfigError(f"config key '{key}': expected auto, cpu, cuda or cuda:N, got {name!r}")
    if not torch.cuda.is_available():
        raise ConfigError(f"config key '{key}': {name} was asked for, but this machine has no CUDA device "
                          "(use auto or cpu)")
    index = int(name[5:]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(f"config key '{key}': {name} was asked for, but this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s)")
