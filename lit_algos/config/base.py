"""Typed config machinery: dict -> dataclass with field paths in every error.

Each config section is a plain dataclass whose ``__post_init__`` checks its own fields with the
helpers below and raises ``ConfigError`` naming the (relative) field. ``from_dict`` builds a
section from YAML data, checks types against the annotations and prefixes field paths, so a
user sees ``model.attention.n_kv_head`` rather than a traceback.
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


def check_registry(field: str, value: str, axis: str) -> None:
    from lit_algos.registry import names

    check_choice(field, value, names(axis))


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
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
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
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(path, value, f"Expected {_type_name(tp)}.")
        return from_dict(tp, value, prefix=path)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, value, f"Expected {_type_name(tp)}.")
        args = get_args(tp)
        items = [_coerce(f"{path}[{i}]", v, args[0]) for i, v in enumerate(value)]
        if origin is tuple and len(args) > 1 and args[1] is not Ellipsis and len(items) != len(args):
            raise ConfigError(path, value, f"Expected a list of exactly {len(args)} items.")
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(path, value, "Expected true/false.")
    if tp is int:
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
    if tp is float:
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
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(path, value, "Expected a string.")
    if tp is dict or origin is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ConfigError(path, value, "Expected a mapping.")
    raise TypeError(f"unsupported config annotation {tp!r} at {path}")


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
        axis = fields[key].metadata.get("registry")
        if axis is not None and isinstance(value, dict):
            # A component section: its registry entry (chosen by `kind`) owns the options class.
            from lit_algos.registry import registry

            kwargs[key] = registry(axis).build_options(value, fields[key].metadata["default_kind"], path)
            continue
        kwargs[key] = _coerce(path, value, hints[key])
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise err.under(prefix) from None


def component_field(axis: str, default_kind: str) -> Any:
    """A dataclass field holding the options of registry ``axis`` (default entry ``default_kind``)."""

    def default():
        from lit_algos.registry import registry

        return registry(axis).options(default_kind)

    return dataclasses.field(
        default_factory=default, metadata={"registry": axis, "default_kind": default_kind}
    )


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain dicts/lists (tuples become lists), for YAML/JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
