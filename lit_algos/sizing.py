"""Sizes from the config alone: refuse a model that cannot be built or cannot fit, before building it.

``estimate_params`` counts the big matrices analytically (no module is created), so a config
such as ``n_layer: 1e9`` is refused in microseconds instead of hanging while a billion layers
are instantiated. Two checks use it:

- ``check_buildable`` (every command, via ``ModelConfig``): at most ``MAX_LAYERS`` layers and
  ``MAX_PARAMS`` parameters; beyond that even describing the model on the meta device is not
  sensible.
- ``check_fits`` (training): a lower bound on training memory (fp32 weights, gradients and two
  AdamW moments = 16 bytes per parameter, plus the logits of one micro-batch) against the
  memory of the device; a lower bound, so a run that could fit is never refused.
"""

from __future__ import annotations

import os

from lit_algos.errors import ConfigError

MAX_LAYERS = 512  # deeper than any public LM; describing 512 layers takes about a minute on 2 cores
MAX_PARAMS = 10**13  # 10 trillion: far beyond anything trainable, far below a hang
BYTES_PER_PARAM_TRAIN = 16  # fp32 weights + gradients + AdamW exp_avg + exp_avg_sq
# what a field usually is at most; the field furthest above its usual size is the one named
USUAL = {"n_layer": 96, "n_embd": 16384, "vocab_size": 262144, "block_size": 131072, "mlp.hidden": 65536}


def estimate_params(m) -> int:
    """Parameters of a ``ModelConfig`` from its shape (matrices and embeddings; biases and norms left out)."""
    C, L, V, T = m.n_embd, m.n_layer, m.vocab_size, m.block_size
    hs, kv = C // max(1, m.n_head), m.n_kv_head  # entries without KV heads count as MHA
    attn = C * (m.n_head * hs) + 2 * C * (kv * hs) + (m.n_head * hs) * C
    gated = m.mlp.kind.endswith("glu")
    mlp = (3 if gated else 2) * C * (m.mlp_hidden or 4 * C)  # an entry without one width: a 4x dense MLP
    embed = V * C * (1 if m.tie_embeddings else 2) + (T * C if m.position.kind == "learned" else 0)
    return int(L * (attn + mlp) + embed)


def _culprit(m) -> str:
    values = {
        "n_layer": m.n_layer,
        "n_embd": m.n_embd,
        "vocab_size": m.vocab_size,
        "block_size": m.block_size,
        "mlp.hidden": getattr(m.mlp, "hidden", None) or 0,
    }
    return max(values, key=lambda k: values[k] / USUAL[k])


def check_buildable(m) -> None:
    """ConfigError (field relative to the model section) when the model is too large to build at all."""
    if m.n_layer > MAX_LAYERS:
        raise ConfigError("n_layer", m.n_layer, f"At most {MAX_LAYERS} layers.")
    params = estimate_params(m)
    if params > MAX_PARAMS:
        field = _culprit(m)
        raise ConfigError(
            field,
            getattr(m.mlp, "hidden", None) if field == "mlp.hidden" else getattr(m, field),
            f"This shape gives about {params:.3g} parameters; at most {MAX_PARAMS:.0e} are supported. "
            f"Reduce it; the size fields are n_layer, n_embd, vocab_size, block_size and mlp.hidden.",
        )


def device_memory(accelerator: str) -> tuple[int, str] | None:
    """(bytes, description) of one device's memory, or None when unknown."""
    if accelerator in ("gpu", "cuda", "auto"):
        try:
            import torch  # here, not at the top: `lit-algos --help` checks configs (sizing) without torch

            if torch.cuda.is_available():
                props = torch.cuda.get_device_properties(0)
                return int(props.total_memory), f"the GPU ({props.name})"
        except Exception:  # no CUDA build, no driver: fall back to host memory
            pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's RAM"
    except (ValueError, OSError, AttributeError):
        return None


def training_memory_lower_bound(cfg) -> int:
    """Bytes that training ``cfg`` needs at least on one device."""
    m, t = cfg.model, cfg.train
    params = estimate_params(m)
    shards = t.devices * t.num_nodes if t.strategy == "fsdp" else 1
    micro = t.micro_batch_size or max(1, t.batch_size // (t.devices * t.num_nodes))
    logits = micro * m.block_size * m.vocab_size * 4 * 2  # fp32 logits and their gradient
    return params * BYTES_PER_PARAM_TRAIN // shards + logits


def check_fits(cfg, accelerator: str | None = None) -> None:
    """ConfigError naming the field that makes training ``cfg`` impossible on this device."""
    memory = device_memory(accelerator or cfg.train.accelerator)
    if memory is None:
        return
    available, where = memory
    need = training_memory_lower_bound(cfg)
    if need <= available:
        return
    m = cfg.model
    params = estimate_params(m)
    logits = need - params * BYTES_PER_PARAM_TRAIN
    if logits > need / 2:
        field, value = "train.batch_size", cfg.train.batch_size
        why = f"the logits of one micro-batch alone take {logits / 2**30:.3g} GiB"
    else:
        name = _culprit(m)
        field, value = f"model.{name}", (m.mlp.hidden if name == "mlp.hidden" else getattr(m, name))
        why = f"about {params:.3g} parameters need {params * BYTES_PER_PARAM_TRAIN / 2**30:.3g} GiB for weights, gradients and AdamW state"
    raise ConfigError(
        field,
        value,
        f"Training needs at least {need / 2**30:.3g} GiB ({why}), but {where} has {available / 2**30:.3g} GiB. "
        "Make the model or the batch smaller.",
    )
