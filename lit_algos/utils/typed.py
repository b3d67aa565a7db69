"""Typed config machinery: dict -> dataclass with field paths in every error.

Each config section is a plain dataclass whose ``__post_init__`` checks its own fields with the
helpers below and raises ``ConfigError`` naming the (relative) field. ``from_dict`` builds a
section from YAML data, checks types against the annotations and prefixes field paths, so a
user sees ``model.attention.n_kv_head`` rather than a traceback.

A field whose metadata holds a ``build`` function (a registry section, see
``lit_algos.registry.component_field``) is built by it: this module knows no registry, so it sits
on the lowest floor of the import layers (``docs/design.md``, "Layers").
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from lit_algos.errors import ConfigError

T = TypeVar("T")


def check_choice(field: str, value: str, choices: list[str] | tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(field, value, f"Allowed values: {', '.join(map(str, choices))}.")


def check_positive(field: str, value: float | None, *, allow_zero: bool = False, allow_none: bool = False):
    if value is None and allow_none:
        return
    ok = value is not None and (value >= 0 if allow_zero else value > 0)
    if not ok:
        allowed = "a number >= 0" if allow_zero else "a number > 0"
        raise ConfigError(field, value, f"Allowed: {allowed}{' or null' if allow_none else ''}.")


def check_range(field: str, value: float, lo: float, hi: float) -> None:
    if not (lo <= value <= hi):
        raise ConfigError(field, value, f"Allowed: a number between {lo} and {hi}.")


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_name(a) for a in get_args(tp))
    if origin in (tuple, list):
        return f"a list of {_type_name(get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping with keys {', '.join(f.name for f in dataclasses.fields(tp))}"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(tp, str(tp))


def _coerce(path: str, value: Any, tp: Any) -> Any:
    """``value`` as an instance of annotation ``tp``, or ConfigError naming ``path``."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(path, value, tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(path, value, f"Expected {_type_name(tp)}.")
        return from_dict(tp, value, prefix=path)
    if origin in (tuple, list):
        return _coerce_sequence(path, value, tp)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, value, "Expected true/false.")
    if tp is int:
        return _coerce_int(path, value)
    if tp is float:
        return _coerce_float(path, value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, value, "Expected a string.")
    if tp is dict or origin is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ConfigError(path, value, "Expected a mapping.")
    raise TypeError(f"unsupported config annotation {tp!r} at {path}")


def _coerce_union(path: str, value: Any, tp: Any) -> Any:
    args = get_args(tp)
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _coerce(path, value, arg)
        except ConfigError as err:
            errors.append(err)
    if len(errors) == 1 and type(None) in args:  # Optional[X]: X's own reason, e.g. "finite"
        raise ConfigError(path, value, f"{errors[0].allowed.rstrip('.')}, or null.")
    raise ConfigError(path, value, f"Expected {_type_name(tp)}.")


def _coerce_sequence(path: str, value: Any, tp: Any) -> Any:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(path, value, f"Expected {_type_name(tp)}.")
    args = get_args(tp)
    items = [_coerce(f"{path}[{i}]", v, args[0]) for i, v in enumerate(value)]
    if get_origin(tp) is tuple and len(args) > 1 and args[1] is not Ellipsis and len(items) != len(args):
        raise ConfigError(path, value, f"Expected a list of exactly {len(args)} items.")
    return tuple(items) if get_origin(tp) is tuple else items


def _coerce_int(path: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):  # PyYAML reads 1e6 (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 2e6 / 2.0e6 is meant as an integer
    raise ConfigError(path, value, "Expected an integer.")


def _coerce_float(path: str, value: Any) -> float:
    number = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
        try:
            number = float(value)
        except ValueError:
            pass
    if number is None:
        raise ConfigError(path, value, "Expected a number.")
    if not math.isfinite(number):  # .inf / .nan would end up in records, which JSON cannot hold
        raise ConfigError(path, value, "Expected a finite number (not .inf or .nan).")
    return number


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and bad types raise ``ConfigError``."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    names = list(fields)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(path, value, f"Unknown key; valid keys here: {', '.join(names)}.")
        build = fields[key].metadata.get("build")
        # A registry section: the entry its `kind` names owns the options class (registry.component_field).
        kwargs[key] = build(value, path) if build is not None else _coerce(path, value, hints[key])
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.under(prefix) from None


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain dicts/lists (tuples become lists), for YAML/JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
