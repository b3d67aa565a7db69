"""String-name registries for every swappable axis: attention, norm, position, mlp, mixer,
optimizer, schedule.

One contract for every axis. An entry is registered with

- a **target**: the class or function the axis builds from (a module class, an optimizer
  builder, a schedule shape);
- a one-line **help**;
- its **options**: a dataclass derived from ``ComponentOptions`` that holds the recipe keys of
  the entry's section (``model.attention: {kind: gqa, n_kv_head: 2}``, ``optim: {kind: muon,
  muon_lr: 0.02}``) with their defaults, checks each field alone in ``__post_init__`` and against
  the section's parent in ``validate(parent)`` (the ``ModelConfig`` for the model axes, the whole
  ``Config`` for the optimizer, the optimizer's options for the schedule);
- ``uses``: the parent's fields it also reads, and ``example``: options that make a small valid
  instance when the defaults alone do not (the parametrized tests build every entry with them).

Config loading asks the registry for the options class of the chosen ``kind``
(``Registry.build_options``), so no config file names an entry; a section may also be written
as its kind alone (``mixer: lstm``). An unknown name fails with the list of valid names.

The modules that register entries are named in ``PROVIDERS`` and imported by ``load_all``: they
sit above this module in the import layers (``docs/design.md``, "Layers"), so it names them as
strings instead of importing them.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lit_algos.errors import ConfigError
from lit_algos.utils.typed import check_choice, from_dict

# The modules whose import registers every entry (each registers its own on import).
PROVIDERS = ("lit_algos.components", "lit_algos.optim")


@dataclass
class ComponentOptions:
    """Base of every entry's options: the ``kind`` (registry name) plus the entry's own fields.

    Subclasses add fields with defaults, check each one in ``__post_init__`` (raise
    ``ConfigError`` with the field name relative to the section, e.g. ``"n_kv_head"``) and
    override ``validate`` for checks that need the section's parent. ``validate`` may also
    resolve derived values in place (mha sets ``n_kv_head = n_head``).
    """

    kind: str = ""

    def validate(self, parent: Any) -> None:
        """Check (and resolve) these options against the section's parent (see the module docstring)."""


class ParentFieldError(ConfigError):
    """Raised by ``validate`` about a field of the section's parent rather than one of its own
    (the LSTM about ``position.kind``, Muon about ``train.strategy``): the field is named relative
    to the parent, not prefixed with the section."""


@dataclass
class Entry:
    name: str
    target: Any
    help: str = ""
    options: type[ComponentOptions] | None = None  # the options dataclass
    uses: tuple[str, ...] = ()  # the parent's fields the entry also reads (n_head, bias, dropout, ...)
    example: dict[str, Any] = field(default_factory=dict)  # options that make a small valid instance (tests)

    def option_names(self, axis: str) -> list[str]:
        """The config keys this entry reads: its own options (``axis.field``) and ``uses``."""
        own = [] if self.options is None else [f"{axis}.{f.name}" for f in dataclasses.fields(self.options)]
        return [n for n in own if n != f"{axis}.kind"] + list(self.uses)

    def own_options(self) -> set[str]:
        return {f.name for f in dataclasses.fields(self.options)} if self.options else set()


@dataclass
class Registry:
    axis: str
    entries: dict[str, Entry] = field(default_factory=dict)
    # What every entry's options must derive from: the axis's shared fields (a norm's placement,
    # an optimizer's lr and schedule), which code outside the entry reads.
    options_base: type[ComponentOptions] = ComponentOptions

    def register(
        self,
        name: str,
        *,
        help: str = "",
        options: type[ComponentOptions],
        uses: tuple[str, ...] = (),
        example: dict[str, Any] | None = None,
    ) -> Callable:
        """Register the decorated target under ``name`` with its ``options`` class (see the module
        docstring for ``uses`` and ``example``)."""
        if not (isinstance(options, type) and issubclass(options, self.options_base)):
            raise TypeError(f"{self.axis} entry {name!r}: options must subclass {self.options_base.__name__}")

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

    def build_options(self, data: Any, default_kind: str, prefix: str = "") -> ComponentOptions:
        """The options of the entry named by ``data['kind']`` (default ``default_kind``), from a mapping,
        from the kind alone (a string) or from null (the default entry).

        A key the entry does not have is an error naming the entry's keys, except a null one:
        a null option loads like an absent one (as it hashes), so records written before an
        option moved to another entry still load.
        """
        load_all()
        if isinstance(data, ComponentOptions):  # Python callers may pass built options
            data = dataclasses.asdict(data)
        data = {"kind": default_kind} if data is None else {"kind": data} if isinstance(data, str) else data
        if not isinstance(data, dict):
            raise ConfigError(
                prefix or self.axis,
                data,
                f"Expected a mapping such as {{kind: {default_kind}, ...}} or an entry name ({', '.join(self.names())}).",
            )
        kind = data.get("kind", default_kind)
        path = f"{prefix}.kind" if prefix else "kind"
        if not isinstance(kind, str) or kind not in self.entries:
            raise ConfigError(path, kind, f"Allowed values: {', '.join(self.names())}.")
        options_cls = self.entries[kind].options
        known = self.entries[kind].own_options()
        for key, value in data.items():
            if key not in known and (value is not None or key not in self._all_options()):
                raise ConfigError(
                    f"{prefix}.{key}" if prefix else str(key), value, self._unknown_key(kind, key, prefix)
                )
        clean = {k: v for k, v in data.items() if k in known}
        clean["kind"] = kind
        return from_dict(options_cls, clean, prefix=prefix)

    def _all_options(self) -> set[str]:
        return {name for e in self.entries.values() for name in e.own_options()}

    def _unknown_key(self, kind: str, key: Any, prefix: str) -> str:
        """Why ``key`` is refused, with the way out: its typo, or the entries that have it."""
        known = self.entries[kind].own_options()
        text = f"{self.axis}.kind={kind} has no option '{key}'; its options are: {', '.join(sorted(known))}."
        if isinstance(key, str) and ":" in key:
            # YAML's {kind:mha} without a space after the colon reads as a key 'kind:mha' with a null
            # value, which would silently load the defaults
            return text + " In YAML a mapping needs a space after each colon: {kind: mha}, not {kind:mha}."
        owners = [e.name for e in self.entries.values() if key in e.own_options()]
        if owners:
            section = prefix or self.axis
            text += (
                f" It is an option of {', '.join(owners)}. To change {section}'s kind, replace the whole section "
                f"(--set '{section}={{kind: ..., ...}}'): setting {section}.kind alone keeps the options of the "
                "kind before."
            )
        return text

    def options(self, kind: str, **values: Any) -> ComponentOptions:
        """Options for ``kind`` from keyword values (Python use; the same checks as a recipe)."""
        return self.build_options({"kind": kind, **values}, kind)


REGISTRIES: dict[str, Registry] = {}


def registry(axis: str, options_base: type[ComponentOptions] | None = None) -> Registry:
    """The registry for ``axis``, created on first use; the module that owns an axis passes the
    ``options_base`` its entries' options must derive from."""
    if axis not in REGISTRIES:
        REGISTRIES[axis] = Registry(axis)
    if options_base is not None:
        REGISTRIES[axis].options_base = options_base
    return REGISTRIES[axis]


def load_all() -> dict[str, Registry]:
    """Import every module that registers entries (``PROVIDERS``), then return all registries."""
    for module in PROVIDERS:
        importlib.import_module(module)
    return REGISTRIES


def names(axis: str) -> list[str]:
    load_all()
    return registry(axis).names()


def check_registry(field: str, value: str, axis: str) -> None:
    """ConfigError unless ``value`` names an entry of ``axis``."""
    check_choice(field, value, names(axis))


def component_field(axis: str, default_kind: str) -> Any:
    """A dataclass field holding the options of registry ``axis`` (default entry ``default_kind``),
    built from a recipe's mapping by ``Registry.build_options`` (``lit_algos.utils.typed.from_dict``
    calls the ``build`` in its metadata)."""

    def default():
        return registry(axis).options(default_kind)

    def build(value: Any, path: str) -> ComponentOptions:
        return registry(axis).build_options(value, default_kind, path)

    return dataclasses.field(
        default_factory=default, metadata={"registry": axis, "default_kind": default_kind, "build": build}
    )


def validate_sections(obj: Any, parent: Any = None) -> None:
    """Build and validate every registry section of dataclass ``obj`` in field order: a kind or a
    mapping given in Python becomes that entry's options; each section's ``validate`` gets
    ``parent`` (default ``obj``); errors name fields under the section."""
    for f in dataclasses.fields(obj):
        axis = f.metadata.get("registry")
        if axis is None:
            continue
        options = getattr(obj, f.name)
        if not isinstance(options, ComponentOptions):  # Python callers may write a kind or a mapping
            options = registry(axis).build_options(options, f.metadata["default_kind"], f.name)
            setattr(obj, f.name, options)
        entry = registry(axis).entry(options.kind)  # the kind was checked when the options were built
        if not isinstance(options, entry.options):
            raise ConfigError(
                f"{f.name}.kind", options.kind, f"The options do not belong to that {axis} entry."
            )
        try:
            options.validate(obj if parent is None else parent)
        except ParentFieldError as err:
            raise ConfigError(err.field, err.value, err.allowed, source=err.source) from None
        except ConfigError as err:
            raise err.under(f.name) from None
