"""Attribution: how much of a whole stack's gain each component carries, and how much is interaction.

For a "retro" stack and a "modern" stack (DESIGN §7):

- add-one CEG of component c: CEG of (retro + c) over retro;
- remove-one CEG of c: CEG of modern over (modern - c), i.e. what c adds on top of the rest;
- whole-stack CEG: modern over retro; interaction = whole / product of single CEGs
  (> 1: the parts help each other; < 1: they overlap);
- log-share of a part: ln(part) / ln(whole), the fraction of the (log) gain it explains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from lit_algos.analysis.ceg import compare
from lit_algos.analysis.stats import Estimate
from lit_algos.records import RunRecord


@dataclass
class ComponentShare:
    component: str
    add_one: Estimate | None = None
    remove_one: Estimate | None = None
    add_share: float | None = None
    remove_share: float | None = None

    def to_dict(self) -> dict:
        return {
            "component": self.component,
            "add_one": self.add_one.to_dict() if self.add_one else None,
            "remove_one": self.remove_one.to_dict() if self.remove_one else None,
            "add_share": self.add_share,
            "remove_share": self.remove_share,
        }


@dataclass
class Attribution:
    unit: str
    whole: Estimate
    components: list[ComponentShare] = field(default_factory=list)
    product_add_one: float | None = None
    product_remove_one: float | None = None
    interaction_add: float | None = None  # whole / product of add-one CEGs
    interaction_remove: float | None = None  # whole / product of remove-one CEGs

    def to_dict(self) -> dict:
        return {
            "unit": self.unit,
            "whole": self.whole.to_dict(),
            "components": [c.to_dict() for c in self.components],
            "product_add_one": self.product_add_one,
            "product_remove_one": self.product_remove_one,
            "interaction_add": self.interaction_add,
            "interaction_remove": self.interaction_remove,
        }


def log_share(part: float | None, whole: float | None) -> float | None:
    if not part or not whole or part <= 0 or whole <= 0 or math.isclose(whole, 1.0):
        return None
    return math.log(part) / math.log(whole)


def _product(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return math.prod(values)  # type: ignore[arg-type]


def attribute(
    retro: list[RunRecord],
    modern: list[RunRecord],
    add_one: dict[str, list[RunRecord]] | None = None,
    remove_one: dict[str, list[RunRecord]] | None = None,
    unit: str = "flops",
    **compare_kwargs,
) -> Attribution:
    """Add-one / remove-one CEGs per component against the whole-stack CEG, in one unit."""
    add_one, remove_one = add_one or {}, remove_one or {}

    def primary(refs, news) -> Estimate:
        return compare(refs, news, **compare_kwargs).summaries[0].estimates[unit]

    whole = primary(retro, modern)
    shares = []
    for name in list(dict.fromkeys([*add_one, *remove_one])):
        share = ComponentShare(name)
        if name in add_one:
            share.add_one = primary(retro, add_one[name])
            share.add_share = log_share(share.add_one.value, whole.value)
        if name in remove_one:
            share.remove_one = primary(remove_one[name], modern)
            share.remove_share = log_share(share.remove_one.value, whole.value)
        shares.append(share)
    out = Attribution(unit, whole, shares)
    if add_one:
        out.product_add_one = _product([s.add_one.value for s in shares if s.add_one])
    if remove_one:
        out.product_remove_one = _product([s.remove_one.value for s in shares if s.remove_one])
    if whole.value:
        out.interaction_add = whole.value / out.product_add_one if out.product_add_one else None
        out.interaction_remove = whole.value / out.product_remove_one if out.product_remove_one else None
    return out
