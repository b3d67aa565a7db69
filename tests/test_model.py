"""The GPT: meta-device build, weight init, forward/loss, parameter tags and counts."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_algos.config.model import AttentionConfig, MLPConfig, ModelConfig, NormConfig, PositionConfig
from lit_algos.model import GPT, build_model, init_weights, param_counts


def cfg_(**kw) -> ModelConfig:
    base = dict(n_layer=2, n_head=4, n_embd=32, block_size=16, vocab_size=64)
    base.update(kw)
    return ModelConfig(**base)


def test_build_model_materialises_everything_and_recomputes_buffers():
    for kind in ("rope", "sinusoidal", "alibi"):
        cfg = cfg_(position=PositionConfig(kind=kind))
        model = build_model(cfg)
        assert all(p.device.type == "cpu" for p in model.parameters())
        assert all(torch.isfinite(p).all() for p in model.parameters())
        eager = GPT(cfg)  # built directly on the CPU, buffers computed at construction
        for (name, buf), (_, ref) in zip(model.named_buffers(), eager.named_buffers()):
            torch.testing.assert_close(buf, ref, msg=name)
        assert len(list(model.named_buffers())) > 0


def test_meta_model_allocates_nothing():
    with torch.device("meta"):
        model = GPT(cfg_(vocab_size=50_000, n_embd=1024, n_head=16, n_layer=4))
    assert all(p.is_meta for p in model.parameters())


def test_init_weights_follows_the_documented_scheme():
    cfg = cfg_(n_layer=3, n_embd=64, vocab_size=512, tie_embeddings=False, norm=NormConfig(kind="layernorm"))
    torch.manual_seed(0)
    model = build_model(cfg)
    resid = cfg.init_std / math.sqrt(2 * cfg.n_layer)
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            assert p.std().item() == pytest.approx(resid, rel=0.1), name
        elif p.ndim == 2:
            assert p.std().item() == pytest.approx(cfg.init_std, rel=0.1), name
        elif name.endswith("bias"):
            assert torch.equal(p, torch.zeros_like(p)), name
        else:
            assert torch.equal(p, torch.ones_like(p)), name  # norm gains
    # Logits start near uniform: the loss is close to ln(V).
    idx = torch.randint(0, cfg.vocab_size, (4, cfg.block_size))
    _, loss = model(idx, idx.roll(1, dims=1))
    assert loss.item() == pytest.approx(math.log(cfg.vocab_size), rel=0.05)


def test_init_weights_refuses_parameters_it_does_not_know():
    cfg = cfg_()
    model = build_model(cfg)
    model.blocks[0].extra = nn.Module()
    model.blocks[0].extra.scale = nn.Parameter(torch.empty(3))
    with pytest.raises(RuntimeError, match="blocks.0.extra.scale"):
        init_weights(model, cfg)


def test_same_seed_same_weights():
    cfg = cfg_(position=PositionConfig(kind="rope"))
    torch.manual_seed(7)
    a = build_model(cfg)
    torch.manual_seed(7)
    b = build_model(cfg)
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), name


def test_forward_shapes_and_loss():
    cfg = cfg_()
    model = build_model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (3, 10))  # shorter than block_size is fine
    targets = torch.randint(0, cfg.vocab_size, (3, 10))
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 10, cfg.vocab_size)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, cfg.vocab_size), targets.reshape(-1)))
    assert model(idx)[1] is None
    targets[:, :5] = -100  # ignored positions (IGNORE_INDEX, PyTorch's convention)
    _, masked = model(idx, targets)
    torch.testing.assert_close(
        masked, F.cross_entropy(logits[:, 5:].reshape(-1, cfg.vocab_size), targets[:, 5:].reshape(-1))
    )
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, cfg.block_size + 1, dtype=torch.long))


def test_logit_softcap_bounds_logits():
    capped = build_model(cfg_(logit_softcap=2.0, init_std=0.5))  # a large init: raw logits far above the cap
    plain = build_model(cfg_(init_std=0.5))
    plain.load_state_dict(capped.state_dict())
    idx = torch.randint(0, 64, (2, 8))
    logits, raw = capped(idx)[0], plain(idx)[0]
    assert raw.abs().max().item() > 4.0
    assert logits.abs().max().item() <= 2.0
    torch.testing.assert_close(logits, 2.0 * torch.tanh(raw / 2.0))


def test_post_norm_normalises_the_block_output():
    cfg = cfg_(norm=NormConfig(kind="rmsnorm", placement="post"), final_norm=False)
    model = build_model(cfg)
    x = torch.randn(2, 8, cfg.n_embd) * 3
    y, aux = model.blocks[0](x, model.pos)
    assert aux is None  # dense blocks have no auxiliary loss
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(2, 8), rtol=1e-3, atol=1e-3)


def test_dropout_only_in_training():
    cfg = cfg_(dropout=0.5)
    model = build_model(cfg)
    idx = torch.randint(0, cfg.vocab_size, (2, 8))
    model.train()
    assert not torch.allclose(model(idx)[0], model(idx)[0])
    model.eval()
    torch.testing.assert_close(model(idx)[0], model(idx)[0])


def test_bias_off_removes_every_bias():
    model = build_model(cfg_(bias=False, mlp=MLPConfig(kind="swiglu")))
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]
    assert [n for n, _ in build_model(cfg_(bias=True)).named_parameters() if n.endswith("bias")]


@pytest.mark.parametrize("position", ("learned", "rope"))
def test_parameter_tags(position):
    tied = build_model(cfg_(position=PositionConfig(kind=position)))
    untied = build_model(cfg_(position=PositionConfig(kind=position), tie_embeddings=False))
    for model in (tied, untied):
        tags = model.parameter_tags()
        params = dict(model.named_parameters())
        assert tags.keys() == params.keys()
        assert set(tags.values()) <= {"embedding", "head", "matrix", "vector"}
        for name, tag in tags.items():
            assert (tag == "vector") == (params[name].ndim == 1), name
    expected_embeddings = {"wte.weight"} | ({"pos.wpe.weight"} if position == "learned" else set())
    assert {n for n, t in tied.parameter_tags().items() if t == "embedding"} == expected_embeddings
    assert "head" not in tied.parameter_tags().values()
    assert [n for n, t in untied.parameter_tags().items() if t == "head"] == ["lm_head.weight"]
    assert untied.parameter_tags()["blocks.0.attn.c_q.weight"] == "matrix"


def test_param_counts_tied_and_untied():
    V, C, T, L = 64, 32, 16, 2
    tied_cfg = cfg_(
        bias=False, norm=NormConfig(kind="rmsnorm"), attention=AttentionConfig(kind="gqa", n_kv_head=2)
    )
    untied_cfg = cfg_(
        bias=False,
        norm=NormConfig(kind="rmsnorm"),
        attention=AttentionConfig(kind="gqa", n_kv_head=2),
        tie_embeddings=False,
    )
    tied, untied = param_counts(tied_cfg), param_counts(untied_cfg)
    kv = 2 * 8  # n_kv_head * head_size
    per_layer = C * C + 2 * C * kv + C * C + 2 * C * 4 * C + 2 * C  # q, k+v, proj, mlp, two norm gains
    embedding = V * C + T * C  # wte + learned positions
    assert tied == {
        "total": embedding + L * per_layer + C,
        "embedding": embedding,
        "non_embedding": L * per_layer + C,
        "active": embedding + L * per_layer + C,
    }
    assert untied["total"] == tied["total"] + V * C
    assert untied["embedding"] == tied["embedding"]
    assert untied["non_embedding"] == tied["non_embedding"] + V * C
    assert param_counts(build_model(untied_cfg)) == untied  # meta count == real model count


def test_model_code_does_not_import_lightning():
    code = "import sys, lit_algos.model, lit_algos.flops; sys.exit(any(m.split('.')[0] in ('lightning', 'pytorch_lightning') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
