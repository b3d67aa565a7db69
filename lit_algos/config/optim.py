"""The optimizer section (``optim``): constructors, the first layout's hash form and its migration.

``optim`` holds the options of the registry 'optimizer' entry its ``kind`` names (``lit_algos.optim``),
with the schedule's options under ``optim.schedule``. Until issue 28 the section was one flat
mapping holding every optimizer's fields (``momentum`` for sgd, five ``muon_*``), named by
``name``. Two things keep that layout alive:

- **Hashes.** Every config hash stored in run records, board entries and sweep ids was computed
  on the flat form, so ``hash_form`` turns a section back into it: the fields its entry does not
  own take the values they always had (``V1_OPTIM``, ``V1_SCHEDULE``; frozen: changing one changes
  every old hash).
- **Loading.** ``migrate`` reads a flat section (a record's config, an old recipe) as the new one:
  ``name`` becomes ``kind``, and the fields the entry does not own (which the old code ignored)
  are dropped.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

from lit_algos.errors import ConfigError, LitAlgosWarning
from lit_algos.registry import ComponentOptions, load_all, registry

# The flat optimizer section's defaults, as hashed before issue 28 (tuples as the lists JSON holds).
V1_OPTIM: dict[str, Any] = {
    "lr": 3e-3,
    "embedding_lr": None,
    "head_lr": None,
    "betas": [0.9, 0.95],
    "eps": 1e-8,
    "weight_decay": 0.1,
    "decay_embeddings": False,
    "momentum": 0.9,
    "muon_lr": 0.02,
    "muon_momentum": 0.95,
    "muon_nesterov": True,
    "muon_ns_steps": 5,
    "muon_weight_decay": None,
    "grad_clip": 1.0,
}
V1_SCHEDULE: dict[str, Any] = {"warmup_steps": 0, "min_lr_ratio": 0.1, "decay_fraction": 0.2}


def OptimConfig(kind: str = "adamw", **options: Any) -> ComponentOptions:  # noqa: N802
    """Options of optimizer ``kind`` (Python use), e.g. ``OptimConfig("muon", muon_lr=0.03)``."""
    return registry("optimizer").options(kind, **options)


def ScheduleConfig(kind: str = "cosine", **options: Any) -> ComponentOptions:  # noqa: N802
    """Options of schedule ``kind`` (Python use), e.g. ``ScheduleConfig("wsd", decay_fraction=0.3)``."""
    return registry("schedule").options(kind, **options)


def hash_form(optim: Any) -> Any:
    """The optimizer section in the flat form hashes are computed on (a flat one unchanged)."""
    if not isinstance(optim, dict) or "kind" not in optim or "name" in optim:
        return optim
    flat = {**V1_OPTIM, **{k: v for k, v in optim.items() if k != "kind"}, "name": optim["kind"]}
    if isinstance(flat.get("schedule"), dict):
        flat["schedule"] = {**V1_SCHEDULE, **flat["schedule"]}
    return flat


def migrate(data: dict, source: str | None = None) -> dict:
    """``data`` (a config mapping) with a flat ``optim`` section read as the registry one; with a
    ``source`` (a recipe file), a deprecation warning names it. Anything else is returned as is."""
    optim = data.get("optim") if isinstance(data, dict) else None
    if not isinstance(optim, dict) or "name" not in optim:
        return data
    if "kind" in optim and optim["kind"] != optim["name"]:
        raise ConfigError(
            "optim.name",
            optim["name"],
            f"optim.name is the old spelling of optim.kind, and this section sets both (kind {optim['kind']!r}); "
            "keep optim.kind only.",
            source=source,
        )
    out = copy.deepcopy(data)
    optim = out["optim"]
    optim["kind"] = optim.pop("name")
    dropped = _drop_unowned(optim, "optimizer", V1_OPTIM)
    if isinstance(optim.get("schedule"), dict):
        dropped += [f"schedule.{k}" for k in _drop_unowned(optim["schedule"], "schedule", V1_SCHEDULE)]
    if source is not None:
        ignored = ""
        if dropped:
            fields = ", ".join(f"optim.{k}" for k in dropped)
            ignored = f" It also sets {fields}, which {optim['kind']} never read; dropped."
        warnings.warn(
            f"{source}: optim.name is deprecated; write optim.kind (the optimizer is a registry entry with its "
            f"own options, like model.attention). Read as optim.kind={optim['kind']}.{ignored}",
            LitAlgosWarning,
            stacklevel=3,
        )
    return out


def _drop_unowned(section: dict, axis: str, v1: dict) -> list[str]:
    """Remove the flat layout's fields that the section's entry does not own; name those that
    differed from the flat default (worth a word in the warning)."""
    load_all()
    kind = section.get("kind")
    if not isinstance(kind, str) or kind not in registry(axis).entries:
        return []  # build_options names the unknown kind
    owned = registry(axis).entry(kind).own_options()
    changed = []
    for key in [k for k in section if k in v1 and k not in owned]:
        value = section.pop(key)
        if value is not None and value != v1[key]:
            changed.append(key)
    return changed
