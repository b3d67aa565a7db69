"""String-name registries for every swappable axis (attention, norm, position, mlp, optimizer, ...).

A registry maps a name used in recipes to a class or factory, plus a one-line description and
the config options that entry reads. An unknown name fails with the list of valid names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    name: str
    target: Any
    help: str = ""
    options: tuple[str, ...] = ()


@dataclass
class Registry:
    axis: str
    entries: dict[str, Entry] = field(default_factory=dict)

    def register(self, name: str, *, help: str = "", options: tuple[str, ...] = ()) -> Callable:
        def decorate(target: Any) -> Any:
            if name in self.entries:
                raise ValueError(f"{self.axis} registry already has an entry named {name!r}")
            self.entries[name] = Entry(name, target, help, tuple(options))
            return target

        return decorate

    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str) -> Any:
        if name not in self.entries:
            raise KeyError(f"unknown {self.axis} {name!r}; valid names: {', '.join(self.names())}")
        return self.entries[name].target


REGISTRIES: dict[str, Registry] = {}


def registry(axis: str) -> Registry:
    """The registry for ``axis``, created on first use."""
    if axis not in REGISTRIES:
        REGISTRIES[axis] = Registry(axis)
    return REGISTRIES[axis]


def load_all() -> dict[str, Registry]:
    """Import every module that registers entries, then return all registries."""
    import lit_algos.components  # noqa: F401  (registers attention/norm/position/mlp)
    import lit_algos.optim  # noqa: F401  (registers optimizer/schedule)

    return REGISTRIES


def names(axis: str) -> list[str]:
    load_all()
    return registry(axis).names()
