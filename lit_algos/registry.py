"""String-name registries for every swappable axis (attention, norm, position, mlp, optimizer, ...).

A registry maps a name used in recipes to a class or factory, a one-line description, and, for
model components, the entry's **options**: a dataclass derived from ``ComponentOptions`` that
holds the recipe keys of that entry's section (``model.attention: {kind: gqa, n_kv_head: 2}``)
with their defaults, checks them field by field in ``__post_init__`` and against the whole model
config in ``validate(model)``. Config loading asks the registry for the options class of the
chosen ``kind`` (``Registry.build_options``), so no config file names a component kind.

An unknown name fails with the list of valid names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lit_algos.errors import ConfigError

if TYPE_CHECKING:
    from lit_algos.config.model import ModelConfig


@dataclass
class ComponentOptions:
    """Base of every component's options: the ``kind`` (registry name) plus the entry's own fields.

    Subclasses add fields with defaults, check each one in ``__post_init__`` (raise
    ``ConfigError`` with the field name relative to the section, e.g. ``"n_kv_head"``) and
    override ``validate`` for checks that need the rest of the model (``n_head``, ``n_embd``,
    ...). ``validate`` may also resolve derived values in place (mha sets ``n_kv_head = n_head``).
    """

    kind: str = ""

    def validate(self, model: ModelConfig) -> None:
        """Check (and resolve) these options against the whole model config."""


@dataclass
class Entry:
    name: str
    target: Any
    help: str = ""
    options: type[ComponentOptions] | None = None  # the options dataclass (model components only)
    uses: tuple[str, ...] = ()  # model-level fields the entry also reads (n_head, bias, dropout, ...)
    example: dict[str, Any] = field(default_factory=dict)  # options that make a small valid instance (tests)

    def option_names(self, axis: str) -> list[str]:
        """The config keys this entry reads: its own options (``axis.field``) and ``uses``."""
        own = [] if self.options is None else [f"{axis}.{f.name}" for f in dataclasses.fields(self.options)]
        return [n for n in own if n != f"{axis}.kind"] + list(self.uses)


@dataclass
class Registry:
    axis: str
    entries: dict[str, Entry] = field(default_factory=dict)

    def register(
        self,
        name: str,
        *,
        help: str = "",
        options: type[ComponentOptions] | tuple[str, ...] | None = None,
        uses: tuple[str, ...] = (),
        example: dict[str, Any] | None = None,
    ) -> Callable:
        """Register ``target`` under ``name``. ``options``: a ``ComponentOptions`` subclass (model
        components) or, for axes whose options live elsewhere (optimizer, schedule), the tuple of
        config keys the entry reads. ``example``: option values that give a small valid model
        (n_head 4, n_embd 32, block_size 16) when the defaults alone do not (gqa needs n_kv_head);
        the test suite builds every entry with them."""
        if isinstance(options, (tuple, list)):
            options, uses = None, (*options, *uses)

        def decorate(target: Any) -> Any:
            if name in self.entries:
                raise ValueError(f"{self.axis} registry already has an entry named {name!r}")
            self.entries[name] = Entry(name, target, help, options, tuple(uses), dict(example or {}))
            return target

        return decorate

    def names(self) -> list[str]:
        return list(self.entries)

    def entry(self, name: str) -> Entry:
        if name not in self.entries:
            raise KeyError(f"unknown {self.axis} {name!r}; valid names: {', '.join(self.names())}")
        return self.entries[name]

    def get(self, name: str) -> Any:
        return self.entry(name).target

    def build_options(self, data: dict[str, Any], default_kind: str, prefix: str = "") -> ComponentOptions:
        """The options of the entry named by ``data['kind']`` (default ``default_kind``), from a mapping.

        A key the entry does not have is an error naming the entry's keys, except a null one:
        a null option loads like an absent one (as it hashes), so records written before an
        option moved to another entry still load.
        """
        from lit_algos.config.base import from_dict

        load_all()
        kind = data.get("kind", default_kind)
        path = f"{prefix}.kind" if prefix else "kind"
        if not isinstance(kind, str) or kind not in self.entries:
            raise ConfigError(path, kind, f"Allowed values: {', '.join(self.names())}.")
        options_cls = self.entries[kind].options
        if options_cls is None:
            raise ConfigError(path, kind, f"The {self.axis} entry {kind!r} declares no options class.")
        known = {f.name for f in dataclasses.fields(options_cls)}
        # A null is tolerated only for an option some other entry of this axis has (old records);
        # any other unknown key is a typo, e.g. YAML's {kind:mha} without a space after the colon,
        # which reads as a key 'kind:mha' with a null value and would silently load the defaults.
        anywhere = {f.name for e in self.entries.values() if e.options for f in dataclasses.fields(e.options)}
        for key, value in data.items():
            if key not in known and (value is not None or key not in anywhere):
                hint = (
                    " In YAML a mapping needs a space after each colon: {kind: mha}, not {kind:mha}."
                    if isinstance(key, str) and ":" in key
                    else ""
                )
                raise ConfigError(
                    f"{prefix}.{key}" if prefix else str(key),
                    value,
                    f"{self.axis}.kind={kind} has no option '{key}'; its options are: {', '.join(sorted(known))}."
                    + hint,
                )
        clean = {k: v for k, v in data.items() if k in known}
        clean["kind"] = kind
        return from_dict(options_cls, clean, prefix=prefix)

    def options(self, kind: str, **values: Any) -> ComponentOptions:
        """Options for ``kind`` from keyword values (Python use; the same checks as a recipe)."""
        return self.build_options({"kind": kind, **values}, kind)


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
