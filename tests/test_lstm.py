"""The LSTM sequence mixer (model.mixer: lstm) inside the GPT shell."""

from __future__ import annotations

import io

import pytest
import torch

from lit_algos.components.lstm import LSTMMixer
from lit_algos.config import Config
from lit_algos.config.model import ModelConfig, component
from lit_algos.errors import ConfigError
from lit_algos.flops import estimate_flops, measure_flops
from lit_algos.model import GPT, build_model, param_counts


def lstm_config(**kw) -> ModelConfig:
    base = dict(
        n_layer=2,
        n_head=1,
        n_embd=32,
        block_size=16,
        vocab_size=64,
        mixer="lstm",
        position=component("position", "none"),
        final_norm=False,
    )
    base.update(kw)
    return ModelConfig(**base)


def seeded(cfg: ModelConfig, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return build_model(cfg)


def tokens(B: int = 3, T: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 64, (B, T), generator=torch.Generator().manual_seed(seed))


def test_trains_with_every_parameter_getting_a_gradient():
    model = seeded(lstm_config(dropout=0.1))
    assert isinstance(model.lstm, LSTMMixer) and not hasattr(model, "blocks")
    assert model.lstm.num_layers == 2 and model.lstm.dropout == 0.1  # dropout between the layers
    idx = tokens()
    logits, loss = model(idx, idx.roll(-1, 1))
    assert logits.shape == (3, 16, 64) and torch.isfinite(loss)
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_meta_build_and_seeded_init_with_remembering_forget_gate():
    a, b = seeded(lstm_config(), 3), seeded(lstm_config(), 3)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.isfinite(pa).all(), name
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    H = 32
    assert (a.lstm.bias_ih_l0[H : 2 * H] == 1).all() and (a.lstm.bias_hh_l0[H : 2 * H] == 0).all()


def test_causal():
    model = seeded(lstm_config())
    model.eval()
    idx = tokens()
    changed = idx.clone()
    changed[:, 9] = (changed[:, 9] + 1) % 64
    before, after = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(before[:, :9], after[:, :9], rtol=0, atol=0)
    assert not torch.allclose(before[:, 9:], after[:, 9:])


def test_state_does_not_leak_across_sequences_of_a_batch():
    """Each row starts from a zero state: a row's output is the same alone, in a batch, after
    other rows change, and after a previous batch (no state kept between calls)."""
    model = seeded(lstm_config())
    model.eval()
    idx = tokens(B=4)
    batch = model(idx)[0]
    for b in range(4):
        alone = model(idx[b : b + 1])[0]
        torch.testing.assert_close(alone[0], batch[b], rtol=1e-5, atol=1e-6)
    other = idx.clone()
    other[0] = tokens(B=1, seed=7)[0]  # change sequence 0 only
    again = model(other)[0]
    torch.testing.assert_close(again[1:], batch[1:], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(again[0], batch[0])


def test_tied_and_untied_embeddings():
    tied, untied = param_counts(lstm_config()), param_counts(lstm_config(tie_embeddings=False))
    assert untied["total"] - tied["total"] == 64 * 32  # the head matrix
    H, L = 32, 2
    assert tied["non_embedding"] == L * (4 * H * (H + H) + 2 * 4 * H)  # W_ih, W_hh, two biases


def test_analytic_flops_against_flop_counter():
    """FlopCounterMode sees the per-step matmuls of aten::lstm on the CPU. It counts one matmul
    fewer per layer and sequence than 3 x forward: the gradient with respect to h0 (zeros, no
    grad) is never computed, i.e. 2 * 4H * H FLOPs per layer per sequence of T tokens."""
    for n_layer, H, T in ((1, 32, 16), (3, 24, 10)):
        cfg = lstm_config(n_layer=n_layer, n_embd=H, block_size=T, tie_embeddings=False)
        report = estimate_flops(cfg)
        assert report.breakdown["lstm_input"] == report.breakdown["lstm_recurrent"] == n_layer * 8 * H * H
        assert report.per_token_forward == n_layer * 16 * H * H + 2 * H * 64
        skipped_h0_grad = n_layer * 2 * 4 * H * H / T
        assert measure_flops(cfg) == pytest.approx(report.per_token_train - skipped_h0_grad, rel=1e-9)


def test_saves_and_loads():
    model, other = seeded(lstm_config()), seeded(lstm_config(), 11)
    blob = io.BytesIO()
    torch.save(model.state_dict(), blob)
    blob.seek(0)
    other.load_state_dict(torch.load(blob, weights_only=True))
    idx = tokens()
    torch.testing.assert_close(other(idx)[0], model(idx)[0], rtol=0, atol=0)


@pytest.mark.parametrize(
    "model,field",
    [
        ({"mixer": "gru"}, "model.mixer"),
        ({"mixer": "lstm", "position": {"kind": "rope"}}, "model.position.kind"),
    ],
)
def test_bad_config_names_the_field(model, field):
    with pytest.raises(ConfigError) as err:
        Config.from_dict({"model": model})
    assert field in str(err.value)


def test_transformer_configs_keep_their_hash():
    """mixer defaults to the transformer, which hashes as the absent key it was before the mixer was
    a registry section: existing recipes keep their config hash. `mixer: lstm` is {kind: lstm}."""
    plain = Config.from_dict({"model": {}})
    explicit = Config.from_dict({"model": {"mixer": None}})
    assert plain.config_hash() == explicit.config_hash()
    assert plain.config_hash() == Config.from_dict({"model": {"mixer": "transformer"}}).config_hash()
    lstm = Config.from_dict({"model": {"mixer": "lstm", "position": {"kind": "none"}}})
    assert plain.config_hash() != lstm.config_hash()
    assert (
        lstm.config_hash()
        == Config.from_dict(
            {"model": {"mixer": {"kind": "lstm"}, "position": {"kind": "none"}}}
        ).config_hash()
    )
    assert lstm.to_dict()["model"]["mixer"] == {"kind": "lstm"}


def test_lstm_recipe_on_the_cpu_size_ladder():
    """`sweep scaling --recipes lstm retro` puts the lstm recipe at each rung; each one loads and
    grows in parameters and FLOPs like the transformer does."""
    from lit_algos.config.recipes import fragment_patch, load_config
    from lit_algos.sweeps.scaling import CPU_LADDER

    sizes = []
    for scale in CPU_LADDER:
        cfg = load_config("lstm", fragment_patch(scale))
        assert cfg.model.mixer.kind == "lstm" and cfg.model.position.kind == "none"
        sizes.append((param_counts(cfg.model)["total"], estimate_flops(cfg.model).per_token_train))
    assert sizes == sorted(sizes) and len(set(sizes)) == len(CPU_LADDER)
