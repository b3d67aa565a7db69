"""LR schedules: the contract every registry entry meets (parametrized over the 'schedule'
registry, so a new schedule is covered without editing this file: warmup, range, reload), then
each shape, and the LambdaLR that applies them to every group."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lit_algos.config.optim import OptimConfig, ScheduleConfig
from lit_algos.errors import ConfigError
from lit_algos.optim import build_optimizer, build_scheduler, lr_multiplier, wsd_decay_start
from lit_algos.registry import names, registry

KINDS = names("schedule")


def schedule(kind: str, **options) -> object:
    """Options of ``kind``: its ``example``, then those of ``options`` the entry has."""
    own = registry("schedule").entry(kind).own_options()
    values = {**registry("schedule").entry(kind).example, **{k: v for k, v in options.items() if k in own}}
    return ScheduleConfig(kind, **values)


def curve(cfg: ScheduleConfig, total: int) -> list[float]:
    return [lr_multiplier(cfg, s, total) for s in range(total)]


def test_registry_names():
    assert KINDS[:5] == ["constant", "linear", "cosine", "inverse_sqrt", "wsd"]
    with pytest.raises(ConfigError, match="inverse_sqrt"):
        ScheduleConfig("no-such-schedule")


@pytest.mark.parametrize("kind", KINDS)
def test_warmup_is_a_linear_ramp_to_the_peak(kind):
    cfg = schedule(kind, warmup_steps=4, min_lr_ratio=0.1)
    assert curve(cfg, 100)[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    # after warmup nothing exceeds the peak or falls below 0, and the curve never increases
    c = curve(cfg, 100)[3:]
    assert max(c) == pytest.approx(1.0) and min(c) >= 0.0
    assert all(b <= a + 1e-12 for a, b in zip(c, c[1:]))


@pytest.mark.parametrize("kind", KINDS)
def test_every_schedule_reloads_from_its_state_dict(kind, tmp_path):
    """The scheduler's state holds counters only (the shape is a closure over the options), so it
    reloads with weights_only and continues at the same multiplier."""
    cfg, total = schedule(kind, warmup_steps=3), 30
    model = nn.Linear(4, 4)
    opt = build_optimizer(model, OptimConfig("sgd", lr=0.1))
    sched = build_scheduler(opt, cfg, total)
    for _ in range(7):
        opt.step()
        sched.step()
    torch.save(sched.state_dict(), tmp_path / "sched.pt")
    fresh_opt = build_optimizer(model, OptimConfig("sgd", lr=0.1))
    fresh = build_scheduler(fresh_opt, cfg, total)
    fresh.load_state_dict(torch.load(tmp_path / "sched.pt", weights_only=True))
    fresh_opt.step()
    fresh.step()
    opt.step()
    sched.step()
    assert fresh_opt.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * lr_multiplier(cfg, 8, total))


def test_constant():
    assert curve(ScheduleConfig("constant"), 50) == [1.0] * 50


def test_a_schedule_refuses_an_option_it_does_not_have():
    with pytest.raises(ConfigError, match="constant has no option 'min_lr_ratio'"):
        ScheduleConfig("constant", min_lr_ratio=0.3)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_decays_end_at_min_lr_ratio_on_the_last_step(kind):
    cfg = ScheduleConfig(kind=kind, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_multiplier(cfg, 10, 110) == pytest.approx(1.0)
    assert lr_multiplier(cfg, 109, 110) == pytest.approx(0.1)
    assert lr_multiplier(cfg, 500, 110) == pytest.approx(0.1)  # past the budget: stays at the floor


def test_cosine_midpoint_and_linear_midpoint():
    cos = ScheduleConfig("cosine", warmup_steps=0, min_lr_ratio=0.0)
    lin = ScheduleConfig("linear", warmup_steps=0, min_lr_ratio=0.0)
    # steps 0..100 of a 101-step run: progress = step / 100
    assert lr_multiplier(cos, 50, 101) == pytest.approx(0.5)
    assert lr_multiplier(cos, 25, 101) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_multiplier(lin, 25, 101) == pytest.approx(0.75)


def test_wsd_is_flat_then_decays_linearly():
    cfg = ScheduleConfig("wsd", warmup_steps=5, decay_fraction=0.2, min_lr_ratio=0.0)
    total = 100
    start = wsd_decay_start(cfg, total)
    assert start == 80
    c = curve(cfg, total)
    assert c[4:start] == [1.0] * (start - 4)  # stable phase
    decay = c[start:]
    assert decay[0] == pytest.approx(1.0) and decay[-1] == pytest.approx(0.0)
    steps = [a - b for a, b in zip(decay, decay[1:])]
    assert steps == pytest.approx([steps[0]] * len(steps))  # linear
    # no decay phase at all: flat for ever
    flat = ScheduleConfig("wsd", decay_fraction=0.0, min_lr_ratio=0.0)
    assert lr_multiplier(flat, 99, 100) == lr_multiplier(flat, 1000, 100) == 1.0


def test_wsd_decay_never_starts_inside_warmup():
    cfg = ScheduleConfig("wsd", warmup_steps=8, decay_fraction=0.5, min_lr_ratio=0.2)
    assert wsd_decay_start(cfg, 10) == 8
    assert lr_multiplier(cfg, 7, 10) == 1.0 and lr_multiplier(cfg, 9, 10) == pytest.approx(0.2)


def test_inverse_sqrt():
    cfg = ScheduleConfig("inverse_sqrt", warmup_steps=4)
    assert lr_multiplier(cfg, 3, 10) == 1.0  # continuous with the warmup
    assert lr_multiplier(cfg, 15, 10) == pytest.approx(0.5)  # sqrt(4 / 16); total_steps unused
    assert lr_multiplier(cfg, 15, 10) == lr_multiplier(cfg, 15, 10_000)
    no_warmup = ScheduleConfig("inverse_sqrt", warmup_steps=0)
    assert [lr_multiplier(no_warmup, s, 10) for s in (0, 3, 8)] == pytest.approx([1.0, 0.5, 1 / 3])


def test_bad_arguments():
    with pytest.raises(ValueError, match="total_steps"):
        lr_multiplier(ScheduleConfig(), 0, 0)
    with pytest.raises(ValueError, match="step"):
        lr_multiplier(ScheduleConfig(), -1, 10)


def test_build_scheduler_scales_every_group_from_its_peak(tmp_path):
    model = nn.Sequential(nn.Embedding(10, 8), nn.LayerNorm(8), nn.Linear(8, 8))
    model.parameter_tags = lambda: {"0.weight": "embedding"}
    sched_cfg = ScheduleConfig("cosine", warmup_steps=2, min_lr_ratio=0.1)
    opt = build_optimizer(model, OptimConfig("muon", lr=1e-3, muon_lr=0.02, embedding_lr=0.3))
    peaks = {g["tag"]: g["lr"] for g in opt.param_groups}
    assert peaks == {"matrix": 0.02, "embedding": 0.3, "vector": 1e-3}
    total = 20
    sched = build_scheduler(opt, sched_cfg, total)
    for step in range(total):
        mult = lr_multiplier(sched_cfg, step, total)
        for g in opt.param_groups:  # the LR in force for this optimizer step
            assert g["lr"] == pytest.approx(peaks[g["tag"]] * mult)
            assert g["initial_lr"] == peaks[g["tag"]]
        opt.step()  # no grads: a no-op, but keeps the scheduler's step-order check happy
        sched.step()
    # the scheduler's state holds no closure and reloads with weights_only
    torch.save(sched.state_dict(), tmp_path / "sched.pt")
    state = torch.load(tmp_path / "sched.pt", weights_only=True)
    assert state["last_epoch"] == total and state["lr_lambdas"] == [None] * len(opt.param_groups)
    fresh = build_scheduler(build_optimizer(model, OptimConfig("muon")), sched_cfg, total)
    fresh.load_state_dict(state)
    assert fresh.last_epoch == total
    with pytest.raises(ValueError, match="total_steps"):
        build_scheduler(opt, sched_cfg, 0)


def test_scheduler_on_a_real_training_loop():
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    opt = build_optimizer(model, OptimConfig("sgd", lr=0.1))
    sched = build_scheduler(opt, ScheduleConfig("linear", warmup_steps=0, min_lr_ratio=0.5), 5)
    seen = []
    for _ in range(5):
        loss = model(torch.randn(8, 4)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.1, 0.0875, 0.075, 0.0625, 0.05])
