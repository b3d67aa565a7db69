"""The paths that only run on a CUDA GPU, against their CPU-tested references: bf16 training, the
flash kernel against the manual softmax, torch.compile, FlexAttention for ``sparse``, and MoE's
``torch._grouped_mm``. Marked ``gpu``; skipped without CUDA (``make gpu-check`` runs them)."""

from __future__ import annotations

import pytest
import torch

from lit_algos.model import build_model

from .model_configs import tiny_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (make gpu-check runs these)"),
]


def seeded(cfg, seed: int = 0, device: str = "cuda"):
    torch.manual_seed(seed)
    return build_model(cfg).to(device)


def tokens(cfg, B: int = 4, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab_size, (B, cfg.block_size), generator=g).cuda()


# Flash needs fp16/bf16 and a head size it supports; 256 tokens, 4 heads of 32.
FLASH = {"n_layer": 2, "n_head": 4, "n_embd": 128, "block_size": 256, "vocab_size": 512}


@pytest.mark.parametrize("attention", ["mha", "gqa"])
def test_flash_kernel_equals_the_manual_softmax_in_bf16(attention):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    flash = seeded(tiny_config(attention, "rope", backend="sdpa", **FLASH)).eval()
    manual = seeded(tiny_config(attention, "rope", backend="manual", **FLASH)).eval()
    idx = tokens(flash.cfg)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):  # flash or an error, never a silent fallback
            a, loss_a = flash(idx, idx)
        b, loss_b = manual(idx, idx)
    # bf16 keeps 8 bits of mantissa: logits of order 1 agree to a few 1e-2, the mean loss closer
    assert (a.float() - b.float()).abs().max().item() < 5e-2
    assert abs(loss_a.item() - loss_b.item()) < 1e-2


def test_bf16_mixed_training_follows_fp32(data_cache, tmp_path):
    from lit_algos.config.recipes import load_config
    from lit_algos.training.run import train

    def run(precision: str):
        cfg = load_config("debug", ["train.accelerator=gpu", f"train.precision={precision}"])
        return train(cfg, runs_dir=tmp_path / precision, progress=False)

    fp32, bf16 = run("32-true"), run("bf16-mixed")
    assert bf16.hardware["precision"]["ran"] == "bf16-mixed"  # native on this GPU: no fallback
    assert bf16.status == fp32.status == "budget_exhausted"
    assert [p.val_loss for p in bf16.curve] == pytest.approx([p.val_loss for p in fp32.curve], abs=5e-2)


def test_compiled_model_equals_eager_forward_and_backward():
    cfg = tiny_config("mha", "rope", **FLASH)
    eager, compiled_src = seeded(cfg), seeded(cfg)
    compiled = torch.compile(compiled_src)
    idx = tokens(cfg)
    (_, loss_e), (_, loss_c) = eager(idx, idx), compiled(idx, idx)
    torch.testing.assert_close(loss_c, loss_e, rtol=1e-4, atol=1e-4)
    loss_e.backward()
    loss_c.backward()
    for (name, a), b in zip(eager.named_parameters(), compiled_src.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize("pattern,period,summary", [("strided", 16, 1), ("fixed", 32, 4)])
def test_flex_attention_for_sparse_equals_the_masked_softmax(pattern, period, summary):
    import torch.nn.functional as F

    from lit_algos.components.sparse import allowed_mask, flex_sparse_attention

    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 256, 32, generator=g).cuda()
    k, v = (torch.randn(2, 2, 256, 32, generator=g).cuda() for _ in range(2))
    got = flex_sparse_attention(q, k, v, pattern, period, summary, compiled=True)  # the training path
    mask = allowed_mask(256, pattern, period, summary, device=q.device)
    want = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    torch.testing.assert_close(got, want, rtol=2e-3, atol=2e-3)


def test_moe_grouped_mm_equals_the_expert_loop_in_bf16():
    """bf16 weights and activations (bf16-true): the grouped kernel is chosen by itself on sm90."""
    from lit_algos.components.moe import _grouped_mm_ok

    if torch.cuda.get_device_capability() < (9, 0) or not hasattr(torch, "_grouped_mm"):
        pytest.skip("torch._grouped_mm on CUDA needs sm90 (H100/H200) and a torch that has it")
    from .test_moe import moe_layer

    a = moe_layer(expert="swiglu", n_experts=8, top_k=2, n_shared=1).cuda().to(torch.bfloat16)
    b = moe_layer(expert="swiglu", n_experts=8, top_k=2, n_shared=1).cuda().to(torch.bfloat16)
    a.experts.use_grouped, b.experts.use_grouped = None, False  # a decides by itself, as in training
    x = torch.randn(4, 64, 32, device="cuda", dtype=torch.bfloat16)
    assert _grouped_mm_ok(x, a.experts.w_in.shape[1], x.size(-1))  # the path under test is taken
    (ya, _), (yb, _) = a(x), b(x)
    torch.testing.assert_close(ya.float(), yb.float(), rtol=2e-2, atol=2e-2)
    ya.float().square().sum().backward()
    yb.float().square().sum().backward()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa.grad.float(), pb.grad.float(), rtol=5e-2, atol=5e-2, msg=name)
