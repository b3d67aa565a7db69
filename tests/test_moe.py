"""MoE feed-forward: routing math, balancing (aux loss and aux-free bias, DDP), accounting, resume."""

from __future__ import annotations

import itertools
import json
import math

import lightning as L
import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, TensorDataset

from lit_algos.components.moe import MoEFeedForward, moe_layers, update_balance
from lit_algos.config import Config
from lit_algos.config.recipes import load_config
from lit_algos.errors import ConfigError
from lit_algos.flops import estimate_flops, measure_flops
from lit_algos.model import build_model, param_counts

from .model_configs import tiny_config


def moe_config(**options):
    base = dict(n_experts=4, top_k=2, n_shared=0, expert_fraction=0.25)
    base.update(options)
    extra = {k: base.pop(k) for k in ("n_layer", "n_embd", "block_size", "tie") if k in base}
    return tiny_config(mlp="moe", mlp_options=base, **extra)


def moe_layer(seed: int = 0, **options) -> MoEFeedForward:
    torch.manual_seed(seed)
    model = build_model(moe_config(n_layer=1, **options))
    return model.blocks[0].mlp


def skewed_batch(layer: MoEFeedForward, n: int = 256, seed: int = 0) -> torch.Tensor:
    """Tokens sharing a common direction u that the router maps to expert 0: a collapsed router."""
    g = torch.Generator().manual_seed(seed)
    C = layer.router.in_features
    u = torch.ones(C) / math.sqrt(C)
    return torch.randn(1, n, C, generator=g) * 0.3 + 3 * u  # (1, n, C)


def skew_router(layer: MoEFeedForward) -> None:
    """Random preferences per token, plus a large score for expert 0 on every token."""
    C = layer.router.in_features
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        layer.router.weight.copy_(torch.randn(layer.router.out_features, C, generator=g))
        layer.router.weight[0] += 4.0 * torch.ones(C) / math.sqrt(C)  # expert 0's score rises with u


# ---- routing ------------------------------------------------------------------------------------


def test_top_k_equal_n_experts_with_uniform_router_is_the_mean_of_the_experts():
    layer = moe_layer(n_experts=4, top_k=4, balance="none", expert="swiglu")
    with torch.no_grad():
        layer.router.weight.zero_()  # softmax of zeros: every expert scores 1/E
    x = torch.randn(2, 16, 32)
    y, aux = layer(x)
    ex = layer.experts
    flat = x.reshape(-1, 32)
    outs = [
        (torch.nn.functional.silu(flat @ ex.w_gate[e].T) * (flat @ ex.w_in[e].T)) @ ex.c_proj[e].T
        for e in range(4)
    ]
    torch.testing.assert_close(y.reshape(-1, 32), torch.stack(outs).mean(0), rtol=1e-5, atol=1e-6)
    assert aux is None


@pytest.mark.parametrize("expert", ("swiglu", "gelu"))
def test_grouped_and_looped_dispatch_agree(expert):
    if not hasattr(torch, "_grouped_mm"):
        pytest.skip("this torch has no _grouped_mm")
    a = moe_layer(expert=expert, n_experts=4, top_k=2, n_shared=1)
    b = moe_layer(expert=expert, n_experts=4, top_k=2, n_shared=1)
    a.experts.use_grouped, b.experts.use_grouped = True, False
    x = torch.randn(2, 16, 32)
    (ya, _), (yb, _) = a(x), b(x)
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-6)
    (ya.square().sum()).backward()
    (yb.square().sum()).backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_capacity_factor_drops_overflow_assignments():
    layer = moe_layer(n_experts=4, top_k=1, n_shared=0, capacity_factor=1.0, balance="none")
    with torch.no_grad():
        layer.router.weight.zero_()
        layer.router.weight[0] = torch.ones(32) / math.sqrt(32)  # every token scores expert 0 highest
    x = skewed_batch(layer, n=64)
    y, _ = layer(x)
    # Every token prefers expert 0; capacity = ceil(1.0 * 64 * 1 / 4) = 16: tokens 16.. get nothing.
    assert y[0, :16].abs().sum(-1).min() > 0
    torch.testing.assert_close(y[0, 16:], torch.zeros(48, 32))


def test_aux_loss_known_value_and_gradient():
    layer = moe_layer(balance="aux_loss", aux_loss_coef=0.05, n_experts=4, top_k=2)
    with torch.no_grad():
        layer.router.weight.zero_()
    layer.train()
    _, aux = layer(torch.randn(2, 16, 32))
    # Uniform probabilities P_e = 1/E: coef * E * sum_e f_e / E = coef, whatever the fractions f_e.
    assert aux.item() == pytest.approx(0.05, rel=1e-6)
    layer.router.weight.requires_grad_(True)
    skew_router(layer)
    _, aux = layer(skewed_batch(layer))
    aux.backward()
    assert layer.router.weight.grad.abs().sum() > 0
    layer.eval()
    assert layer(torch.randn(1, 4, 32))[1] is None  # no balancing loss in evaluation


# ---- aux-free balancing ---------------------------------------------------------------------------


def imbalance_after(balance: str, steps: int = 80) -> tuple[float, float]:
    layer = moe_layer(n_experts=4, top_k=1, router="sigmoid", balance=balance, bias_update_rate=0.02)
    skew_router(layer)
    layer.train()
    history = []
    for step in range(steps):
        with torch.no_grad():
            layer(skewed_batch(layer, seed=step))
        history.append(update_balance(layer)[0]["max_over_mean"])
    return history[0], sum(history[-10:]) / 10


def test_aux_free_bias_balances_a_skewed_router():
    first, last = imbalance_after("aux_free")
    assert first > 3.5  # nearly everything on expert 0 of 4 (max/mean 4 would be all of it)
    assert last < 1.5
    control_first, control_last = imbalance_after("none")
    assert control_first > 3.5 and control_last > 3.5  # without the bias it stays collapsed


def test_bias_is_for_selection_only():
    layer = moe_layer(n_experts=4, top_k=1, router="sigmoid", balance="aux_free", renormalize=False)
    x = torch.randn(1, 8, 32)
    scores = layer.router(x.reshape(-1, 32)).sigmoid()
    with torch.no_grad():
        layer.expert_bias.copy_(torch.tensor([0.0, 0.0, 0.0, 100.0]))  # everyone is sent to expert 3
        layer.experts.c_proj.zero_()
        layer.experts.c_proj[3] = torch.randn(32, layer.experts.c_proj.shape[2])
    y, _ = layer(x)
    ex = layer.experts
    flat = x.reshape(-1, 32)
    expert3 = (torch.nn.functional.silu(flat @ ex.w_gate[3].T) * (flat @ ex.w_in[3].T)) @ ex.c_proj[3].T
    # weighted by the unbiased score of expert 3, not by anything involving the bias
    torch.testing.assert_close(y.reshape(-1, 32), expert3 * scores[:, 3:4], rtol=1e-5, atol=1e-6)


def _ddp_worker(rank: int, world: int, init_file: str, out_file: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    layer = moe_layer(n_experts=4, top_k=1, router="sigmoid", balance="aux_free", bias_update_rate=0.02)
    skew_router(layer)
    layer.train()

    def all_reduce(t: torch.Tensor) -> torch.Tensor:
        torch.distributed.all_reduce(t)
        return t

    for step in range(5):
        with torch.no_grad():
            layer(skewed_batch(layer, n=32 + 32 * rank, seed=100 * rank + step))  # different data per rank
        update_balance(layer, all_reduce)
    biases = [torch.zeros(4) for _ in range(world)]
    torch.distributed.all_gather(biases, layer.expert_bias)
    if rank == 0:
        with open(out_file, "w") as f:
            json.dump([b.tolist() for b in biases], f)
    torch.distributed.destroy_process_group()


@pytest.mark.slow  # two spawned processes (gloo): ~5 s idle, much more on a loaded machine
def test_bias_is_identical_on_two_ddp_ranks_and_uses_the_global_load(tmp_path):
    out = tmp_path / "biases.json"
    mp.start_processes(
        _ddp_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, join=True, start_method="spawn"
    )
    rank0, rank1 = json.loads(out.read_text())
    assert rank0 == rank1
    # One process that sees both ranks' batches between updates gets the same bias.
    layer = moe_layer(n_experts=4, top_k=1, router="sigmoid", balance="aux_free", bias_update_rate=0.02)
    skew_router(layer)
    layer.train()
    for step in range(5):
        with torch.no_grad():
            for rank in (0, 1):
                layer(skewed_batch(layer, n=32 + 32 * rank, seed=100 * rank + step))
        update_balance(layer)
    assert layer.expert_bias.tolist() == pytest.approx(rank0)
    assert any(abs(b) > 0 for b in rank0)


# ---- accounting -----------------------------------------------------------------------------------

FLOP_GRID = [
    dict(n_experts=e, top_k=k, n_shared=s, expert_fraction=f, expert=act, router=r, first_dense=d, every=ev)
    for (e, k, s, f), act, r, (d, ev) in itertools.product(
        [(4, 1, 0, 1.0), (4, 2, 1, 0.5), (8, 2, 2, 0.25), (8, 8, 0, 0.125), (16, 4, 1, 0.25)],
        ("swiglu", "gelu"),
        ("softmax", "sigmoid"),
        [(0, 1), (1, 1), (0, 2)],
    )
][::7]  # 9 of the 60 combinations, every option value still present


@pytest.mark.parametrize("options", FLOP_GRID, ids=[json.dumps(o, separators=(",", ":")) for o in FLOP_GRID])
def test_active_flops_match_flop_counter(options):
    cfg = moe_config(n_layer=3, tie=False, **options)
    analytic = estimate_flops(cfg).per_token_train
    assert abs(analytic - measure_flops(cfg)) / analytic < 0.02


def test_active_params_leave_out_the_unrouted_experts():
    cfg = moe_config(n_layer=2, n_experts=8, top_k=2, n_shared=1, expert_fraction=0.25, first_dense=1)
    counts = param_counts(cfg)
    C, H = 32, 32  # expert width = 0.25 * 128
    per_expert = 3 * C * H  # swiglu: gate, up, down
    assert counts["total"] - counts["active"] == (8 - 2) * per_expert  # one MoE layer (the first is dense)
    dense = param_counts(tiny_config(mlp="swiglu", n_layer=2))
    assert dense["active"] == dense["total"]


def test_modern_moe_matches_modern_active_flops():
    modern, moe = load_config("modern"), load_config("modern-moe")
    f_dense, f_moe = estimate_flops(modern.model).per_token_train, estimate_flops(moe.model).per_token_train
    assert abs(f_moe - f_dense) / f_dense < 0.005
    p_dense, p_moe = param_counts(modern.model), param_counts(moe.model)
    assert p_moe["total"] > 1.4 * p_dense["total"]
    assert abs(p_moe["active"] - p_dense["active"]) / p_dense["active"] < 0.005


@pytest.mark.parametrize(
    "override, field, fragment",
    [
        ("model.mlp.top_k=9", "model.mlp.top_k", "at most n_experts (8)"),
        ("model.mlp.n_experts=0", "model.mlp.n_experts", "a number > 0"),
        ("model.mlp.expert_fraction=0.001", "model.mlp.expert_fraction", "0 wide"),
        ("model.mlp.first_dense=4", "model.mlp.first_dense", "No layer"),
        ("model.mlp.router=tanh", "model.mlp.router", "softmax, sigmoid"),
        ("model.mlp.n_expert=4", "model.mlp.n_expert", "has no option 'n_expert'"),
    ],
)
def test_bad_moe_options_name_the_field(override, field, fragment):
    with pytest.raises(ConfigError) as info:
        load_config("modern-moe", [override])
    assert info.value.field == field
    assert fragment in str(info.value) and "\n" not in str(info.value)


# ---- training: aux loss channel, bias in checkpoints ----------------------------------------------


def _lit(cfg_dict: dict):
    from lit_algos.training.module import LitGPT

    return LitGPT(cfg_dict, total_steps=6)


def _loader(cfg: Config) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, cfg.model.vocab_size, (16, cfg.model.block_size), generator=g)
    return DataLoader(TensorDataset(x, x.roll(-1, dims=1)), batch_size=4)


def _trainer(max_steps: int, callbacks: list) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )


def test_resume_restores_the_bias_and_the_aux_loss_is_logged_apart(tmp_path):
    from lit_algos.training.moe_callbacks import MoEBalance

    cfg = load_config(
        "debug",
        [
            "model.mlp={kind: moe, n_experts: 4, top_k: 1, router: sigmoid, bias_update_rate: 0.05}",
            "optim.schedule.kind=constant",
        ],
    )
    torch.manual_seed(0)
    module = _lit(cfg.to_dict())
    logged: list[dict] = []
    balance = MoEBalance(log_every_steps=1, log=lambda metrics, step, trainer: logged.append(metrics))
    ckpt = tmp_path / "last.ckpt"
    saved = {}

    class SaveAtStep3(L.Callback):  # mid-run, as the target tracker checkpoints
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 3:
                trainer.save_checkpoint(ckpt)
                saved["bias"] = moe_layers(pl_module.model)[0].expert_bias.clone()

    _trainer(4, [balance, SaveAtStep3()]).fit(module, _loader(cfg))
    bias = saved["bias"]
    assert bias.abs().sum() > 0  # three updates of 0.05 moved it
    assert {"train/aux_loss", "moe/layer0/max_over_mean", "moe/layer0/bias/3"} <= set(logged[-1])
    summary = balance.summary()
    assert summary["window_steps"] == 4 and sum(summary["layers"][0]["fraction"]) == pytest.approx(1.0)

    seen = {}

    class Capture(L.Callback):
        def on_train_start(self, trainer, pl_module):
            seen["bias"] = moe_layers(pl_module.model)[0].expert_bias.clone()

    torch.manual_seed(1)
    resumed = _lit(cfg.to_dict())
    assert moe_layers(resumed.model)[0].expert_bias.abs().sum() == 0  # a fresh model starts at 0
    _trainer(6, [Capture(), MoEBalance()]).fit(resumed, _loader(cfg), ckpt_path=str(ckpt), weights_only=False)
    torch.testing.assert_close(seen["bias"], bias, rtol=0, atol=0)


def test_runs_under_bf16_autocast():
    layer = moe_layer(n_experts=4, top_k=2, n_shared=1)
    x = torch.randn(2, 16, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = layer(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
