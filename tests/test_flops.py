"""FLOPs: the analytic count matches FlopCounterMode over a grid of configs; peak FLOP/s lookup."""

from __future__ import annotations

import itertools

import pytest

from lit_algos.flops import PEAK_FLOPS, estimate_flops, measure_flops, peak_flops
from lit_algos.model import GPT

from .model_configs import axis_entries, entry_names, tiny_config

ATTENTIONS = tuple(entry_names("attention"))
BACKENDS = ("sdpa", "manual")
POSITIONS = tuple(entry_names("position"))
MLPS = tuple(entry_names("mlp"))
AXIS_ENTRIES = axis_entries()


make = tiny_config


def _grid() -> list[tuple[str, dict]]:
    cases = []
    # Every attention x backend x position, cycling the other switches so each value shows up often.
    for i, (att, be, pos) in enumerate(itertools.product(ATTENTIONS, BACKENDS, POSITIONS)):
        kw = dict(
            attention=att,
            backend=be,
            position=pos,
            mlp=MLPS[i % len(MLPS)],
            tie=i % 2 == 0,
            qk_norm=i % 3 == 0,
            bias=i % 5 != 0,
        )
        cases.append(
            (
                f"{att}-{be}-{pos}-{kw['mlp']}-tie{int(kw['tie'])}-qk{int(kw['qk_norm'])}-b{int(kw['bias'])}",
                kw,
            )
        )
    odd = dict(n_layer=3, n_head=3, n_embd=21, block_size=13, vocab_size=97)  # head size 7, prime-ish sizes
    cases += [
        ("odd-gqa-swiglu", dict(attention="gqa", n_kv_head=1, mlp="swiglu", **odd)),
        (
            "odd-mqa-alibi-hidden",
            dict(attention="mqa", position="alibi", backend="manual", tie=False, hidden=50, **odd),
        ),
        ("odd-relu2", dict(mlp="relu2", position="sinusoidal", qk_norm=True, bias=False, **odd)),
        (
            "rope-gqa-3of6",
            dict(
                attention="gqa",
                n_kv_head=3,
                n_head=6,
                n_embd=36,
                position="rope",
                mlp="swiglu",
                tie=False,
                qk_norm=True,
                bias=False,
                norm="rmsnorm",
                block_size=24,
            ),
        ),
        ("post-norm", dict(norm="rmsnorm", placement="post", n_layer=1, vocab_size=50)),
        ("no-norm", dict(norm="none", n_layer=1, vocab_size=50)),
        ("softcap-wide-vocab", dict(vocab_size=1000, logit_softcap=15.0, n_layer=1)),
    ]
    return cases


GRID = _grid()


@pytest.mark.parametrize("axis,name", AXIS_ENTRIES, ids=[f"{a}-{n}" for a, n in AXIS_ENTRIES])
def test_every_entry_counts_its_flops(axis, name):
    """Analytic == FlopCounterMode for every registry entry (untied head so every matmul shows)."""
    for n_layer in (1, 3):
        cfg = make(**{axis: name}, tie=False, n_layer=n_layer)
        analytic = estimate_flops(cfg).per_token_train
        assert abs(analytic - measure_flops(cfg)) / analytic < 0.02


@pytest.mark.parametrize("kw", [kw for _, kw in GRID], ids=[name for name, _ in GRID])
def test_analytic_matches_measured(kw):
    cfg = make(**kw)
    analytic = estimate_flops(cfg).per_token_train
    measured = measure_flops(cfg)
    assert abs(analytic - measured) / measured < 0.02


def test_swiglu_width_options_reach_the_count():
    cfg = make(mlp="swiglu", n_embd=48, bias=False)
    cfg.mlp.hidden, cfg.mlp.multiple, cfg.mlp.match_gelu_params = None, 2.5, True
    assert cfg.mlp_hidden == 80
    assert estimate_flops(cfg).per_token_train == pytest.approx(measure_flops(cfg), rel=0.02)


def test_matches_six_n_plus_attention_formula():
    """nanochat's form: training FLOPs/token = 6 * (matmul weights) + 12 * L * C * T."""
    cfg = make(attention="gqa", mlp="swiglu", tie=False, bias=False, norm="rmsnorm", position="rope")
    model = GPT(cfg)
    matmul_weights = sum(
        p.numel() for n, p in model.named_parameters() if p.ndim == 2 and not n.startswith("wte")
    )
    report = estimate_flops(cfg)
    assert report.per_token_train == 6 * matmul_weights + 12 * cfg.n_layer * cfg.n_embd * cfg.block_size
    assert report.per_token_train == 3 * report.per_token_forward
    assert sum(report.breakdown.values()) == report.per_token_forward
    assert report.breakdown["lm_head"] == 2 * cfg.n_embd * cfg.vocab_size


def test_kv_heads_and_mlp_kind_change_the_count():
    mha, mqa = estimate_flops(make("mha")), estimate_flops(make("mqa"))
    C, hs, L = 32, 8, 2
    assert mha.breakdown["attn_qkv"] - mqa.breakdown["attn_qkv"] == L * 2 * C * 2 * (4 - 1) * hs
    gelu, swiglu = estimate_flops(make(mlp="gelu")), estimate_flops(make(mlp="swiglu"))
    assert swiglu.breakdown["mlp"] == 1.5 * gelu.breakdown["mlp"]


def test_measured_is_per_token_whatever_the_batch():
    cfg = make(position="alibi", attention="gqa")
    assert measure_flops(cfg, batch_size=3) == measure_flops(cfg, batch_size=1)


def test_per_step():
    report = estimate_flops(make())
    assert report.per_step(1000) == 1000 * report.per_token_train


@pytest.mark.parametrize(
    "name,precision,expected",
    [
        ("NVIDIA H100 80GB HBM3", "bf16-mixed", 989.4e12),
        ("NVIDIA H100 PCIe", "bf16", 756.5e12),
        ("NVIDIA H200", "bf16-true", 989.4e12),
        ("NVIDIA A100-SXM4-80GB", "tf32", 156.0e12),
        ("NVIDIA GeForce RTX 4090", "32-true", 82.6e12),
        ("H100 SXM", "fp16", 989.4e12),
        ("cpu", "bf16", None),
        ("Some Unknown Accelerator", "bf16", None),
        ("NVIDIA A100-SXM4-40GB", "int4", None),
    ],
)
def test_peak_flops(name, precision, expected):
    assert peak_flops(name, precision) == expected


def test_peak_table_shape():
    assert PEAK_FLOPS["CPU"] is None
    for device, table in PEAK_FLOPS.items():
        if table is not None:
            assert table["bf16"] >= table["tf32"] > 0, device
