"""Components: invariants every registry entry must satisfy, then entry-specific behaviour.

The invariant tests are parametrized over the registries' names, with each entry's ``example``
options, so a new entry is covered without editing this file: forward/backward, meta-device
build and init, causality, sdpa == manual where the entry has a ``backend`` option, and
save/load. The FLOP invariant (analytic == FlopCounterMode) is in test_flops.py.
"""

from __future__ import annotations

import io
import math

import pytest
import torch

import lit_algos.components  # noqa: F401
from lit_algos.components.position import RotaryPosition, alibi_slopes
from lit_algos.config.model import MLPConfig, ModelConfig
from lit_algos.model import GPT, build_model
from lit_algos.registry import registry

from .model_configs import axis_entries, entry_names, has_option, tiny_config

ATTENTIONS = tuple(entry_names("attention"))
POSITIONS = tuple(entry_names("position"))
BACKENDS = ("sdpa", "manual")

tiny = tiny_config


def seeded(cfg: ModelConfig, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(cfg)


def tokens(cfg: ModelConfig, B: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg.vocab_size, (B, cfg.block_size), generator=g)


AXIS_ENTRIES = axis_entries()
ENTRY_IDS = [f"{a}-{n}" for a, n in AXIS_ENTRIES]
# Entries with a `backend` option must compute the same function with each backend.
BACKEND_ENTRIES = [(a, n) for a, n in AXIS_ENTRIES if has_option(a, n, "backend")]


@pytest.mark.parametrize("axis,name", AXIS_ENTRIES, ids=ENTRY_IDS)
def test_every_registry_entry_trains(axis, name):
    cfg = tiny(**{axis: name})
    model = seeded(cfg)
    idx = tokens(cfg)
    logits, _ = model(idx)
    assert logits.shape == (2, cfg.block_size, cfg.vocab_size)
    loss, aux = model.loss(idx, idx.roll(-1, dims=1))
    assert torch.isfinite(loss) and torch.isfinite(aux) and aux.ndim == 0
    (loss + aux).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("axis,name", AXIS_ENTRIES, ids=ENTRY_IDS)
def test_every_entry_builds_on_meta_and_initialises(axis, name):
    cfg = tiny(**{axis: name})
    with torch.device("meta"):
        meta = GPT(cfg)
    assert all(p.is_meta for p in meta.parameters())  # construction allocates nothing
    a, b = seeded(cfg, seed=3), seeded(cfg, seed=3)  # meta build, to_empty, reset_buffers, init_weights
    for (name_a, t_a), (_, t_b) in zip(
        [*a.named_parameters(), *a.named_buffers()], [*b.named_parameters(), *b.named_buffers()], strict=True
    ):
        assert torch.isfinite(t_a).all(), name_a  # no to_empty garbage left behind
        torch.testing.assert_close(t_a, t_b, rtol=0, atol=0, msg=name_a)  # the init is seeded


@pytest.mark.parametrize("axis,name", AXIS_ENTRIES, ids=ENTRY_IDS)
def test_every_entry_is_causal(axis, name):
    """No entry may let a position see a later token (sequence mixers most of all)."""
    for backend in BACKENDS:
        model = seeded(tiny(**{axis: name}, backend=backend))
        model.eval()
        idx = tokens(model.cfg)
        t = 9
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % model.cfg.vocab_size
        before, after = model(idx)[0], model(changed)[0]
        torch.testing.assert_close(before[:, :t], after[:, :t], rtol=0, atol=1e-6)
        assert not torch.allclose(before[:, t], after[:, t])  # the change is seen from its own position on


@pytest.mark.parametrize("axis,name", BACKEND_ENTRIES, ids=[f"{a}-{n}" for a, n in BACKEND_ENTRIES])
@pytest.mark.parametrize("position", POSITIONS)
def test_sdpa_equals_manual(axis, name, position):
    kw = {axis: name, "position": position, "qk_norm": position == "rope"}
    sdpa = seeded(tiny(**kw, backend="sdpa"))
    manual = seeded(tiny(**kw, backend="manual"), seed=9)
    manual.load_state_dict(sdpa.state_dict())
    idx = tokens(sdpa.cfg)
    logits_s, loss_s = sdpa(idx, idx)
    logits_m, loss_m = manual(idx, idx)
    torch.testing.assert_close(logits_s, logits_m, rtol=1e-5, atol=1e-5)
    loss_s.backward()
    loss_m.backward()
    grads_m = dict(manual.named_parameters())
    for pname, p in sdpa.named_parameters():
        torch.testing.assert_close(p.grad, grads_m[pname].grad, rtol=1e-4, atol=1e-6, msg=pname)


@pytest.mark.parametrize("axis,name", AXIS_ENTRIES, ids=ENTRY_IDS)
def test_every_entry_saves_and_loads(axis, name):
    cfg = tiny(**{axis: name})
    model = seeded(cfg)
    for buf in model.state_dict().values():  # persistent state must travel too (e.g. an MoE bias)
        if buf.dtype.is_floating_point and buf.ndim == 1:
            buf.add_(torch.linspace(0.0, 0.01, buf.numel()))
    blob = io.BytesIO()
    torch.save(model.state_dict(), blob)
    blob.seek(0)
    other = seeded(cfg, seed=11)
    other.load_state_dict(torch.load(blob, weights_only=True))
    idx = tokens(cfg)
    model.eval(), other.eval()
    torch.testing.assert_close(other(idx)[0], model(idx)[0], rtol=0, atol=0)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(other.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_each_axis_has_the_designed_entries():
    assert set(registry("attention").names()) >= {"mha", "gqa", "mqa", "sliding"}
    assert set(registry("norm").names()) >= {"none", "layernorm", "rmsnorm"}
    assert set(registry("position").names()) >= {"learned", "sinusoidal", "rope", "alibi", "none"}
    assert set(registry("mlp").names()) >= {"gelu", "relu", "relu2", "swiglu"}
    assert set(registry("mixer").names()) >= {"transformer", "lstm"}


@pytest.mark.parametrize("backend", ("sdpa", "manual"))
def test_gqa_with_all_kv_heads_equals_mha(backend):
    mha = seeded(tiny("mha", "rope", backend=backend))
    gqa = seeded(tiny("gqa", "rope", backend=backend, n_kv_head=4), seed=5)
    gqa.load_state_dict(mha.state_dict())  # same parameter names and shapes
    idx = tokens(mha.cfg)
    torch.testing.assert_close(gqa(idx)[0], mha(idx)[0], rtol=0, atol=0)


def _expand_kv_rows(w: torch.Tensor, n_kv: int, group: int) -> torch.Tensor:
    """(n_kv*hs, ...) -> (n_kv*group*hs, ...): each KV head copied for the query heads that share it."""
    per_head = w.view(n_kv, -1, *w.shape[1:])  # (n_kv, hs, ...)
    return per_head.repeat_interleave(group, dim=0).flatten(0, 1)  # (n_kv*group*hs, ...)


@pytest.mark.parametrize("kind,backend", [(k, b) for k in ("gqa", "mqa") for b in ("sdpa", "manual")])
def test_shared_kv_heads_equal_mha_with_copied_kv_weights(kind, backend):
    small = seeded(tiny(kind, "alibi", backend=backend, qk_norm=True))
    n_kv = small.cfg.n_kv_head
    group = small.cfg.n_head // n_kv
    mha = seeded(tiny("mha", "alibi", backend=backend, qk_norm=True), seed=3)
    state = small.state_dict()
    for key, value in list(state.items()):
        if ".attn.c_k." in key or ".attn.c_v." in key:
            state[key] = _expand_kv_rows(value, n_kv, group)
    mha.load_state_dict(state)
    idx = tokens(mha.cfg)
    torch.testing.assert_close(small(idx)[0], mha(idx)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("position", POSITIONS)
def test_causality_of_every_attention_with_every_position(attention, position):
    for backend in BACKENDS if has_option("attention", attention, "backend") else ("sdpa",):
        model = seeded(tiny(attention, position, backend=backend))
        idx = tokens(model.cfg)
        t = 9
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 1) % model.cfg.vocab_size
        before, after = model(idx)[0], model(changed)[0]
        torch.testing.assert_close(before[:, :t], after[:, :t], rtol=0, atol=1e-6)
        assert not torch.allclose(before[:, t], after[:, t])


@pytest.mark.parametrize("backend", ("sdpa", "manual"))
def test_sliding_window_hides_tokens_beyond_the_window(backend):
    model = seeded(tiny("sliding", "rope", backend=backend, n_layer=1))  # one layer: receptive field = window
    idx = tokens(model.cfg)
    changed = idx.clone()
    changed[:, 0] = (changed[:, 0] + 1) % model.cfg.vocab_size
    before, after = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(before[:, 4:], after[:, 4:], rtol=0, atol=1e-6)  # window 4: position 0 is out
    assert not torch.allclose(before[:, 3], after[:, 3])  # position 3 still sees position 0


def test_rope_scores_depend_only_on_relative_position():
    cfg = tiny(position="rope", n_head=1, n_embd=16, block_size=12)
    rope = RotaryPosition(cfg)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, 1, 16, generator=g).expand(1, 1, 12, 16)  # the same query at every position
    k = torch.randn(1, 1, 1, 16, generator=g).expand(1, 1, 12, 16)
    q_rot, k_rot = rope.rotate(q, k)
    scores = (q_rot @ k_rot.transpose(-2, -1))[0, 0]  # (T, T)
    # Toeplitz: shifting both positions by one leaves the score unchanged.
    torch.testing.assert_close(scores[1:, 1:], scores[:-1, :-1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(scores[0, 0], scores[5, 0])  # but it does depend on the distance
    torch.testing.assert_close(q_rot.norm(dim=-1), q.norm(dim=-1))  # a rotation keeps norms


def test_alibi_slopes_and_bias():
    torch.testing.assert_close(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    # 6 heads: the 4-head slopes, then every other slope of the 8-head sequence.
    torch.testing.assert_close(
        alibi_slopes(6), torch.tensor([2.0**-2, 2.0**-4, 2.0**-6, 2.0**-8, 2.0**-1, 2.0**-3])
    )
    model = seeded(tiny(position="alibi"))
    bias = model.pos.score_bias(5, torch.device("cpu"), torch.float32)  # (nh, T, T)
    assert bias.shape == (4, 5, 5)
    slope = alibi_slopes(4)[1]
    assert bias[1, 4, 1].item() == pytest.approx(-3 * slope.item())
    assert bias[1, 2, 2].item() == 0.0


def test_sinusoidal_table_handles_odd_width():
    model = seeded(tiny(position="sinusoidal", n_head=3, n_embd=33))
    table = model.pos.table
    assert table.shape == (16, 33)
    torch.testing.assert_close(table[0, 0::2], torch.zeros(17))  # sin(0)
    torch.testing.assert_close(table[0, 1::2], torch.ones(16))  # cos(0)
    assert table[3, 0].item() == pytest.approx(math.sin(3.0))


def test_norms():
    x = torch.randn(3, 5, 32) * 7 + 2
    rms = seeded(tiny(norm="rmsnorm")).blocks[0].norm_1
    torch.testing.assert_close(rms(x).pow(2).mean(-1), torch.ones(3, 5), rtol=1e-3, atol=1e-3)
    ln = seeded(tiny(norm="layernorm")).blocks[0].norm_1
    y = ln(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(3, 5), rtol=0, atol=1e-5)
    assert ln.bias is not None
    assert seeded(tiny(norm="layernorm", bias=False)).blocks[0].norm_1.bias is None
    assert seeded(tiny(norm="none")).blocks[0].norm_1(x) is x


def test_mlp_activations_and_widths():
    cfg = tiny(mlp="relu2", bias=False)
    mlp = seeded(cfg).blocks[0].mlp
    h = torch.randn(10)
    torch.testing.assert_close(mlp.act(h), torch.relu(h) ** 2)
    assert mlp.c_fc.out_features == 4 * 32
    # SwiGLU at 2/3 width holds exactly as many weights as the 4x GELU MLP (n_embd divisible by 3).
    gelu = seeded(tiny(mlp="gelu", n_embd=48, bias=False)).blocks[0].mlp
    swiglu = (
        seeded(
            ModelConfig(
                n_layer=1,
                n_head=4,
                n_embd=48,
                block_size=8,
                vocab_size=64,
                bias=False,
                mlp=MLPConfig(kind="swiglu", match_gelu_params=True),
            )
        )
        .blocks[0]
        .mlp
    )
    assert sum(p.numel() for p in swiglu.parameters()) == sum(p.numel() for p in gelu.parameters())
    explicit = ModelConfig(
        n_layer=1,
        n_head=4,
        n_embd=32,
        block_size=8,
        vocab_size=64,
        mlp=MLPConfig(kind="swiglu", hidden=40, match_gelu_params=True),
    )
    assert seeded(explicit).blocks[0].mlp.c_up.out_features == 40  # an explicit width wins


def test_qk_norm_normalises_each_head():
    model = seeded(tiny(qk_norm=True))
    attn = model.blocks[0].attn
    q = torch.randn(2, 4, 16, 8) * 5
    torch.testing.assert_close(attn.q_norm(q).pow(2).mean(-1), torch.ones(2, 4, 16), rtol=1e-3, atol=1e-3)
    assert seeded(tiny(qk_norm=False)).blocks[0].attn.q_norm is None
