"""Multi-head latent attention: exact equivalences with plain attention, partial rotary, sizes.

The registry invariants (forward/backward, init, causality, sdpa == manual with every position,
analytic == measured FLOPs, save/load) already cover ``mla`` through its ``example`` options.
"""

from __future__ import annotations

import pytest
import torch

from lit_algos.config.model import ModelConfig, component
from lit_algos.errors import ConfigError
from lit_algos.model import build_model, param_counts

C, NH, HS = 32, 4, 8  # n_embd, n_head, head size


def cfg(attention, position="learned", **kw) -> ModelConfig:
    base = dict(n_layer=2, n_head=NH, n_embd=C, block_size=16, vocab_size=64, bias=False)
    base.update(kw)
    return ModelConfig(attention=attention, position=component("position", position), **base)


def seeded(c: ModelConfig, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model(c)
    model.eval()
    return model


def tokens(B: int = 2, T: int = 16) -> torch.Tensor:
    return torch.randint(0, 64, (B, T), generator=torch.Generator().manual_seed(1))


def _kv_up_parts(w_up: torch.Tensor, d_nope: int, d_v: int) -> tuple[torch.Tensor, torch.Tensor]:
    """c_kv_up.weight (nh*(dn+dv), r) -> key rows (nh*dn, r) and value rows (nh*dv, r), head by head."""
    per_head = w_up.view(NH, d_nope + d_v, -1)  # (nh, dn+dv, r)
    return per_head[:, :d_nope].reshape(NH * d_nope, -1), per_head[:, d_nope:].reshape(NH * d_v, -1)


@pytest.mark.parametrize("backend", ("sdpa", "manual"))
def test_low_rank_mla_is_mha_with_factored_weights(backend):
    """Equivalence 1: MLA without latent norm and without decoupled rope (rope_head_dim 0) equals
    MHA whose W_q = W_uq W_dq, W_k = W_uk W_dkv and W_v = W_uv W_dkv (every product of rank <= r),
    with all other weights shared. Exact up to float rounding, for ranks below n_embd."""
    mla_opts = component(
        "attention", "mla", kv_lora_rank=12, q_lora_rank=10, latent_norm=False, backend=backend
    )
    mla = seeded(cfg(mla_opts))
    mha = seeded(cfg(component("attention", "mha", backend=backend)), seed=5)
    state = {k: v for k, v in mla.state_dict().items() if ".attn." not in k}
    for layer in range(2):
        p = f"blocks.{layer}.attn."
        w = {k[len(p) :]: v for k, v in mla.state_dict().items() if k.startswith(p)}
        w_k, w_v = _kv_up_parts(w["c_kv_up.weight"], HS, HS)
        state[p + "c_q.weight"] = w["c_q_up.weight"] @ w["c_q_down.weight"]  # (nh*hs, C)
        state[p + "c_k.weight"] = w_k @ w["c_kv_down.weight"]
        state[p + "c_v.weight"] = w_v @ w["c_kv_down.weight"]
        state[p + "c_proj.weight"] = w["c_proj.weight"]
    mha.load_state_dict(state)
    idx = tokens()
    torch.testing.assert_close(mla(idx)[0], mha(idx)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", ("sdpa", "manual"))
def test_full_rank_mla_reproduces_any_mha(backend):
    """Equivalence 2: with kv_lora_rank = n_embd (no compression), no latent norm, no q latent
    and no decoupled rope, MLA represents a given MHA exactly: W_dkv = I, W_uk = W_k, W_uv = W_v."""
    mha = seeded(cfg(component("attention", "mha", backend=backend)))
    mla_opts = component("attention", "mla", kv_lora_rank=C, latent_norm=False, backend=backend)
    mla = seeded(cfg(mla_opts), seed=7)
    state = {k: v for k, v in mha.state_dict().items() if ".attn." not in k}
    for layer in range(2):
        p = f"blocks.{layer}.attn."
        w = {k[len(p) :]: v for k, v in mha.state_dict().items() if k.startswith(p)}
        k_heads, v_heads = w["c_k.weight"].view(NH, HS, C), w["c_v.weight"].view(NH, HS, C)
        state[p + "c_q.weight"] = w["c_q.weight"]
        state[p + "c_kv_down.weight"] = torch.eye(C)
        state[p + "c_kv_up.weight"] = torch.cat((k_heads, v_heads), dim=1).reshape(NH * 2 * HS, C)
        state[p + "c_proj.weight"] = w["c_proj.weight"]
    mla.load_state_dict(state)
    idx = tokens()
    torch.testing.assert_close(mla(idx)[0], mha(idx)[0], rtol=1e-5, atol=1e-5)


def test_decoupled_rope_rotates_only_the_trailing_features():
    c = cfg(component("attention", "mla", kv_lora_rank=16, rope_head_dim=4), position="rope")
    model = seeded(c)
    assert c.attention.rope_head_dim == 4 and c.attention.qk_nope_head_dim == HS
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, NH, 16, HS + 4, generator=g)
    q_rot, _ = model.pos.rotate(q, q)
    torch.testing.assert_close(q_rot[..., :HS], q[..., :HS], rtol=0, atol=0)  # nope part untouched
    assert not torch.allclose(q_rot[..., HS:], q[..., HS:])
    torch.testing.assert_close(q_rot[..., HS:].norm(dim=-1), q[..., HS:].norm(dim=-1))  # still a rotation
    attn = model.blocks[0].attn
    assert attn.c_kv_down.out_features == 16 + 4  # latent + one rotary key shared by all heads
    assert attn.c_q.out_features == NH * (HS + 4)


def test_defaults_follow_deepseek_proportions_and_shrink_the_cache():
    from lit_algos.components.attention import CausalSelfAttention
    from lit_algos.components.mla import MultiHeadLatentAttention

    c = cfg(component("attention", "mla"), position="rope", n_embd=64)  # head size 16
    o = c.attention
    assert (o.kv_lora_rank, o.rope_head_dim, o.qk_nope_head_dim, o.v_head_dim) == (64, 8, 16, 16)
    assert MultiHeadLatentAttention.kv_cache_per_token(c) == 64 + 8
    mha = cfg(component("attention", "mha"), n_embd=64)
    assert CausalSelfAttention.kv_cache_per_token(mha) == 2 * 64
    small = cfg(component("attention", "mla", kv_lora_rank=8, q_lora_rank=8))
    assert param_counts(small)["total"] < param_counts(cfg(component("attention", "mha")))["total"]


@pytest.mark.parametrize(
    "options,position,field",
    [
        ({"rope_head_dim": 4}, "learned", "model.attention.rope_head_dim"),
        ({"rope_head_dim": 3}, "rope", "model.attention.rope_head_dim"),
        ({"kv_lora_rank": 0}, "rope", "model.attention.kv_lora_rank"),
        ({"backend": "flash"}, "rope", "model.attention.backend"),
    ],
)
def test_bad_options_name_the_field(options, position, field):
    from lit_algos.config import Config

    with pytest.raises(ConfigError) as err:
        Config.from_dict({"model": {"attention": {"kind": "mla", **options}, "position": {"kind": position}}})
    assert field in str(err.value)
