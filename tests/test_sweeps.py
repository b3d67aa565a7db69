"""Sweeps as library calls: the jobs, and the attribution recovered from records with known gains."""

from __future__ import annotations

import pytest

from lit_algos.analysis.sweeps import ablation_analysis, ablation_jobs, scaling_jobs
from lit_algos.analysis.synthetic import log_linear_loss, synthetic_record
from lit_algos.errors import LitAlgosError


def test_ablation_jobs_add_and_remove_each_component():
    jobs = ablation_jobs("retro", "modern", ["position"])
    assert [j.name for j in jobs] == ["retro", "modern", "retro+position", "modern-position"]
    add = jobs[2]
    assert add.recipe == "retro" and add.overrides[0].startswith("model.position=")
    with pytest.raises(LitAlgosError, match="wings"):
        ablation_jobs("retro", "modern", ["wings"])
    assert [j.name for j in scaling_jobs(["retro"], ["scales/mini"])] == ["retro@mini"]


def test_ablation_analysis_recovers_known_gains():
    # L(F) = 10 - 0.2 ln(k F): recipe k needs 1/k of the reference's FLOPs for any loss.
    gains = {"retro": 1.0, "modern": 4.0, "retro+position": 2.0, "modern-position": 2.5}

    def runs(name: str):
        fn = log_linear_loss(k=gains[name])
        return [synthetic_record(f"{name}-{s}", recipe=name, seed=s, loss_fn=fn) for s in range(3)]

    report, attribution = ablation_analysis({n: runs(n) for n in gains}, "retro", "modern", ["position"])
    assert report.summaries[0].estimates["flops"].value == pytest.approx(4.0, rel=1e-3)
    (component,) = attribution.components
    assert component.add_one.value == pytest.approx(2.0, rel=1e-3)
    assert component.remove_one.value == pytest.approx(4.0 / 2.5, rel=1e-3)
