"""Recipe files: YAML with ``extends:`` inheritance, ``--set key=value`` overrides and patches.

A **patch** is a mapping of dotted field paths to values (``{"train.max_tokens": 65536,
"optim": {...}}``) set on a recipe in order, a later write to a path replacing an earlier one:
what ``--set`` strings are parsed into once (``as_patch``), what run specs carry, and what a size
fragment becomes when applied to any recipe (``fragment_patch``).

Lookup: a path to a file, or a name under the recipes directory ($LIT_ALGOS_RECIPES, else
``./recipes``, else the ``recipes/`` folder beside the installed package). Names may contain
slashes (``paper/compact-baseline``). ``extends`` takes one name or a list; later entries and
the recipe's own fields win. Mappings merge key by key; every other value replaces.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from lit_algos.config import Config
from lit_algos.config.optim import migrate
from lit_algos.errors import ConfigError, LitAlgosError, LitAlgosWarning
from lit_algos.utils import atomic_write_text


def recipes_dirs() -> list[Path]:
    dirs = []
    if os.environ.get("LIT_ALGOS_RECIPES"):
        dirs.append(Path(os.environ["LIT_ALGOS_RECIPES"]))
    dirs.append(Path.cwd() / "recipes")
    dirs.append(Path(__file__).resolve().parents[2] / "recipes")
    return dirs


FRAGMENT_DIRS = (
    "scales",
)  # size fragments: extended by a recipe (extends: [retro, scales/tiny]), not trained alone


def list_recipes(fragments: bool = True) -> list[str]:
    """Every recipe name (``paper/flash``, ...) under the recipe directories; studies are not recipes.
    ``fragments=False`` leaves out the size fragments (``scales/*``)."""
    found: set[str] = set()
    for root in recipes_dirs():
        if root.is_dir():
            # recipes/studies/ holds study files (lit_algos.studies), not recipes
            found.update(
                str(p.relative_to(root).with_suffix(""))
                for p in root.rglob("*.yaml")
                if p.relative_to(root).parts[0] != "studies"
            )
    if not fragments:
        found = {name for name in found if name.split("/", 1)[0] not in FRAGMENT_DIRS}
    return sorted(found)


def find_recipe(name: str, relative_to: Path | None = None) -> Path:
    candidates = [Path(name)]
    if relative_to is not None:
        candidates += [relative_to / name, relative_to / f"{name}.yaml"]
    for root in recipes_dirs():
        candidates += [root / name, root / f"{name}.yaml"]
    for path in candidates:
        if path.is_file():
            return path
    known = ", ".join(list_recipes()) or "none found"
    raise LitAlgosError(
        f"Recipe {name!r} not found: it is neither a file nor a name under {recipes_dirs()[0]} or the project's "
        f"recipes/ directory. Known recipes: {known}."
    )


def deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_YAML_CACHE: dict[tuple, dict] = {}


def _read_yaml(path: Path) -> dict:
    """A recipe file as a dict; parsed once per (path, mtime, size), since a sweep of many specs
    resolves the same few files again and again (a copy is returned: callers may change it)."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in _YAML_CACHE:
        return copy.deepcopy(_YAML_CACHE[key])
    data = _parse_yaml(path)
    if key is not None:
        _YAML_CACHE[key] = copy.deepcopy(data)
    return data


def _parse_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise LitAlgosError(
            f"Recipe {path} is not UTF-8 text (byte {err.start} cannot be decoded): save it as UTF-8 YAML."
        ) from None
    except OSError as err:
        raise LitAlgosError(f"Recipe {path} cannot be read: {err.strerror or err}.") from None
    except yaml.YAMLError as err:
        raise LitAlgosError(f"Recipe {path} is not valid YAML: {err}".replace("\n", " ")) from None
    except RecursionError:
        raise LitAlgosError(too_deep(f"Recipe {path}")) from None
    if not isinstance(data, dict):
        raise LitAlgosError(
            f"Recipe {path} must be a YAML mapping at the top level, got {type(data).__name__}."
        )
    return data


def resolve_recipe_dict(name: str, _stack: tuple[Path, ...] = (), _relative_to: Path | None = None) -> dict:
    """The recipe as one merged mapping, with every ``extends`` applied."""
    path = find_recipe(name, _relative_to).resolve()
    if path in _stack:
        chain = " -> ".join(p.stem for p in (*_stack, path))
        raise LitAlgosError(f"Recipe inheritance loops: {chain}. Remove one of the 'extends' entries.")
    data = migrate(_read_yaml(path), source=f"Recipe {path}")  # an old flat optim section (optim.name)
    parents = data.pop("extends", None) or []
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise ConfigError(
            "extends", parents, "Expected a recipe name or a list of recipe names.", source=str(path)
        )
    merged: dict = {}
    for parent in parents:
        merged = deep_merge(merged, resolve_recipe_dict(parent, (*_stack, path), path.parent))
    merged = deep_merge(merged, data)
    if not _stack:
        if not set(merged) - {"name", "description"}:
            raise LitAlgosError(
                f"Recipe {path} is empty: it sets no model, optim, data or train field and extends no recipe, so it "
                "would train the built-in defaults (2,000,000 tokens). Write the fields to change, or "
                "'extends: RECIPE' to start from one (e.g. extends: debug)."
            )
        merged.setdefault("name", _recipe_name(path))
    return merged


def _recipe_name(path: Path) -> str:
    for root in recipes_dirs():
        try:
            return str(path.relative_to(root.resolve()).with_suffix(""))
        except ValueError:
            continue
    return path.stem


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(
            item,
            item,
            "An override must look like --set key.path=value in one argument (with '=' and no space), "
            "e.g. --set model.attention.kind=mqa.",
        )
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(key, raw, "An override key is a dotted path such as model.n_layer.")
    if key == "optim.name":  # the flat optimizer section's spelling (lit_algos.config.optim)
        warnings.warn(
            f"--set {item}: optim.name is deprecated; write optim.kind (read as optim.kind).",
            LitAlgosWarning,
            stacklevel=3,
        )
        key = "optim.kind"
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise ConfigError(key, raw[:40] + "...", too_deep("The value")) from None
    return key.split("."), value


def too_deep(what: str) -> str:
    """The message for YAML nested past the parser's recursion limit (thousands of levels)."""
    return (
        f"{what} nests its mappings or lists too deeply for the YAML parser (thousands of levels); "
        "a recipe is a few levels deep (e.g. model.attention.kind): fix the file."
    )


Patch = dict[str, Any]  # dotted field path -> value, in the order they are set


def as_patch(overrides: Sequence[str] | Mapping[str, Any] = ()) -> Patch:
    """``--set`` strings (``key.path=value``, parsed as YAML) or a mapping, as a patch."""
    if isinstance(overrides, Mapping):
        return merge_patches(overrides)
    if isinstance(overrides, str):
        overrides = [overrides]
    return merge_patches(*({".".join(path): value} for path, value in map(parse_override, overrides)))


def merge_patches(*patches: Mapping[str, Any]) -> Patch:
    """One patch doing what ``patches`` do one after the other: a path set again moves to the end
    with its last value (the earlier write could only be overwritten)."""
    out: Patch = {}
    for patch in patches:
        for key, value in patch.items():
            out.pop(key, None)
            out[key] = value
    return out


def fragment_patch(fragment: str) -> Patch:
    """A size fragment (``scales/mini``) as a patch of its leaves, so it applies on top of any recipe
    and sets only what it names (a mapping in it merges into the recipe's, field by field)."""
    data = resolve_recipe_dict(fragment)
    data.pop("name", None)
    out: Patch = {}

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(path, value)
            else:
                out[path] = value

    walk("", data)
    return out


def apply_overrides(data: dict, overrides: Sequence[str] | Mapping[str, Any]) -> dict:
    """``data`` with a patch (or ``--set`` strings) applied; ``data`` itself is not changed."""
    out = copy.deepcopy(data)
    for key, value in as_patch(overrides).items():
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(key, value, f"'{part}' is a value, not a section, so it has no sub-keys.")
            node = child
        node[parts[-1]] = copy.deepcopy(value)
    return out


def load_config(recipe: str | None = None, overrides: Sequence[str] | Mapping[str, Any] = ()) -> Config:
    """Resolve a recipe (or the defaults), apply overrides (``--set`` strings or a patch), validate;
    raises ``ConfigError``."""
    data = resolve_recipe_dict(recipe) if recipe else {}
    data = apply_overrides(data, overrides)
    try:
        return Config.from_dict(data)
    except ConfigError as err:
        raise err.in_source(f"recipe {recipe!r}" if recipe else "the defaults") from None


def save_config(config: Config, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
