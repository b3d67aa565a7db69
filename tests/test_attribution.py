"""Attribution at one common L* with intervals, Shapley shares, ablation de-duplication
(lit_algos.analysis.attribution, lit_algos.cli.sweep_cmds; issue 14 item 6).

Known answer: two independent components that multiply compute efficiency by 2 ("rope") and 3
("swiglu") on a curved loss curve (a power law with a floor), so modern = x6, modern - rope = x3,
modern - swiglu = x2; the interaction is exactly 1, Shapley shares are ln 2 / ln 6 and ln 3 / ln 6.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from lit_algos.analysis.attribution import attribute, shapley_values
from lit_algos.analysis.synthetic import synthetic_record

GRID = list(np.geomspace(1e12, 1e15, 60))


def runs(recipe: str, k: float, seeds=(0, 1, 2), sigma: float = 0.0):
    rng = np.random.default_rng(zlib.crc32(recipe.encode()))  # hash() changes per process
    out = []
    for s in seeds:
        # without noise, seeds still differ by a compute shift that every group shares (so paired
        # ratios stay exact): a copy of one record is not another seed
        kk = k * math.exp(rng.normal(0, sigma)) if sigma else k * math.exp(0.01 * (s - 1))
        out.append(
            synthetic_record(
                f"{recipe}-{s}",
                recipe=recipe,
                seed=s,
                flops=GRID,
                loss_fn=lambda f, kk=kk: 2.0 + 50.0 * (kk * f / 1e12) ** -0.3,
            )
        )
    return out


def stacks(sigma: float = 0.0):
    return dict(
        retro=runs("retro", 1.0, sigma=sigma),
        modern=runs("modern", 6.0, sigma=sigma),
        add_one={
            "rope": runs("retro+rope", 2.0, sigma=sigma),
            "swiglu": runs("retro+swiglu", 3.0, sigma=sigma),
        },
        remove_one={
            "rope": runs("modern-rope", 3.0, sigma=sigma),
            "swiglu": runs("modern-swiglu", 2.0, sigma=sigma),
        },
    )


def test_independent_components_show_no_interaction_at_one_loss():
    attr = attribute(**stacks(), shapley=True)
    # the retro final loss (smoothed; within 0.5% on this curved curve), one L* for every comparison
    assert attr.loss == pytest.approx(2.0 + 50.0 * 1000**-0.3, rel=5e-3)
    assert attr.whole.value == pytest.approx(6.0, rel=1e-3)
    assert attr.interaction_add.value == pytest.approx(1.0, rel=1e-3)
    assert attr.interaction_remove.value == pytest.approx(1.0, rel=1e-3)
    by = {c.component: c for c in attr.components}
    assert by["rope"].remove_one.value == pytest.approx(2.0, rel=1e-3)
    assert by["rope"].shapley_share.value == pytest.approx(math.log(2) / math.log(6), rel=1e-3)
    assert sum(c.shapley_share.value for c in attr.components) == pytest.approx(1.0, abs=1e-12)


def test_interaction_and_shares_get_intervals_over_seeds():
    attr = attribute(**stacks(sigma=0.1), shapley=True, n_resamples=2000)
    for est in (attr.interaction_add, attr.interaction_remove):
        assert est.low < 1.0 < est.high and "Welch" in est.method
    rope = next(c for c in attr.components if c.component == "rope")
    assert rope.add_share.low < math.log(2) / math.log(6) < rope.add_share.high
    assert rope.add_one.low is not None  # the CEGs carry ceg.summarize's t interval


def test_shapley_of_a_known_game():
    # v(a) = 1, v(b) = 2, v(ab) = 5: the interaction 2 is split evenly -> 2 and 3
    v = {frozenset(): 0.0, frozenset("a"): 1.0, frozenset("b"): 2.0, frozenset("ab"): 5.0}
    assert shapley_values(v, ["a", "b"]) == {"a": 2.0, "b": 3.0}


def test_shapley_needs_every_subset():
    s = stacks()
    s["add_one"]["norm"] = runs("retro+norm", 1.5)
    with pytest.raises(Exception, match="missing: rope\\+swiglu"):
        attribute(**s, shapley=True)


def test_ablation_sweep_skips_runs_with_an_endpoint_config():
    from lit_algos.config.recipes import load_config
    from lit_algos.sweeps.ablation import ablation_jobs, dedupe_jobs

    retro = load_config("retro").to_dict()
    # retro against itself: every add-one / remove-one config equals the endpoint, none is trained
    jobs = ablation_jobs("retro", "retro", ["position", "norm"], retro, retro)
    kept, same_as = dedupe_jobs(jobs, [])
    assert [name for name, *_ in kept] == ["retro"]
    assert same_as == {
        "retro": "retro",
        "retro+position": "retro",
        "retro-position": "retro",
        "retro+norm": "retro",
        "retro-norm": "retro",
    }


def test_an_arm_worse_than_retro_is_a_number_not_a_bound():
    """An add-one arm that ends above retro's final loss (0.8x) never reached retro's L*, so it was
    a censored bound; L* is now the highest final loss of any arm, which every run reaches."""
    st = stacks()
    st["add_one"]["bias"] = runs("retro+bias", 0.8)
    attr = attribute(**st)
    by_name = {c.component: c for c in attr.components}
    assert attr.censored == [] and by_name["bias"].add_one.bound is None
    assert by_name["bias"].add_one.value == pytest.approx(0.8, rel=1e-2)
    assert attr.whole.value == pytest.approx(6.0, rel=1e-2)
