"""The composable GPT: token embedding -> mixer (transformer blocks or an LSTM) -> final norm -> LM head.

Every swappable piece comes from a registry (``lit_algos.components``) by the name in the
``ModelConfig``; this file only wires them together, initialises the weights and counts
parameters. No training machinery lives here (no optimizer, precision or compile).

    model = build_model(cfg, device="cuda")    # meta-device construction, then init on device
    logits, loss = model(idx, targets)         # (B, T) -> (B, T, V) and the mean loss (None without targets)
    loss, aux = model.loss(idx, targets)       # training and evaluation: no full logits, aux losses apart

One loss path: ``hidden_states`` (the final norm's output and the mixer's auxiliary losses), then
``logits`` or ``lm_loss`` (``lit_algos.loss.lm_loss``: the ignore index, the soft-cap, and the
chunked and plain strategies of the same loss).
"""

from __future__ import annotations

import math

import torch
from torch import nn

import lit_algos.components  # noqa: F401  (fills the registries)
from lit_algos.components.norm import LayerNorm, NoNorm, RMSNorm, build_norm
from lit_algos.components.transformer import Block  # noqa: F401  (public: FSDP wraps each Block)
from lit_algos.config.model import ModelConfig
from lit_algos.loss import head_logits, lm_loss, logits_cross_entropy
from lit_algos.registry import registry


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        # One position module for the whole model; the mixer receives it in forward (see position.py).
        self.pos = registry("position").get(cfg.position.kind)(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        # The mixer sits under its own name (blocks, lstm), which the parameter names carry.
        mixer = registry("mixer").get(cfg.mixer.kind)
        self.mixer_name = mixer.attribute
        setattr(self, self.mixer_name, mixer(cfg))
        self.norm_f = build_norm(cfg) if cfg.final_norm else NoNorm(cfg.n_embd)
        # Tied: the head reuses wte.weight through F.linear, so there is no second parameter to
        # keep tied (to_empty would silently untie a shared nn.Parameter). The head has no bias.
        self.lm_head = None if cfg.tie_embeddings else nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)

    @property
    def head_weight(self) -> torch.Tensor:
        """The LM head's weight (V, C): the token embedding when tied."""
        return self.wte.weight if self.lm_head is None else self.lm_head.weight  # (V, C)

    def hidden_states(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """idx (B, T) token ids -> the final norm's output (B, T, C) and the sum of the mixer's
        auxiliary losses (a float32 scalar, 0 when no component has one; e.g. MoE load balancing)."""
        T = idx.size(1)
        if T > self.cfg.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.cfg.block_size}")
        x = self.drop(self.pos.embed(self.wte(idx)))  # (B, T, C)
        x, aux = getattr(self, self.mixer_name)(x, self.pos)
        x = self.norm_f(x)
        return x, aux if aux is not None else x.new_zeros((), dtype=torch.float32)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """Hidden states (..., C) -> soft-capped logits (..., V)."""
        return head_logits(h, self.head_weight, self.cfg.logit_softcap)

    def lm_loss(self, h: torch.Tensor, targets: torch.Tensor, *, chunked: bool = True) -> torch.Tensor:
        """The mean cross-entropy of hidden states (B, T, C) against targets (B, T) (IGNORE_INDEX = -100
        skipped; NaN when every target is): chunked (no full logits) or plain (``lit_algos.loss``)."""
        # reshape, not view: the LSTM mixer's output is not contiguous
        return lm_loss(
            h.reshape(-1, h.size(-1)),
            self.head_weight,
            targets.reshape(-1),
            self.cfg.logit_softcap,
            chunked=chunked,
        )

    def loss(
        self, idx: torch.Tensor, targets: torch.Tensor, *, chunked: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training and evaluation: (the mean LM loss, the auxiliary losses' sum); no full logits
        unless ``chunked=False``. The training step adds the two and logs them apart."""
        h, aux = self.hidden_states(idx)
        return self.lm_loss(h, targets, chunked=chunked), aux

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx (B, T) -> (logits (B, T, V), the mean LM loss against ``targets`` or None): the plain
        strategy of ``lm_loss``, from the logits it returns."""
        logits = self.logits(self.hidden_states(idx)[0])
        return logits, None if targets is None else logits_cross_entropy(logits, targets)

    def reset_buffers(self) -> None:
        """Recompute every non-persistent buffer (rope cos/sin, sinusoid table, alibi slopes)."""
        for module in self.modules():
            if module is not self and hasattr(module, "reset_buffers"):
                module.reset_buffers()

    def parameter_tags(self) -> dict[str, str]:
        """Every parameter name -> "embedding" | "head" | "matrix" | "vector", for optimizer groups.

        embedding: lookup tables (token and learned position embeddings; the tied head is wte);
        head: the untied LM head; matrix: other 2-D weights; vector: norm gains, biases, other 1-D.
        """
        embedding_ids = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)}
        head_id = id(self.lm_head.weight) if self.lm_head is not None else None
        tags = {}
        for name, p in self.named_parameters():
            if id(p) in embedding_ids:
                tags[name] = "embedding"
            elif id(p) == head_id:
                tags[name] = "head"
            elif p.ndim >= 2:
                tags[name] = "matrix"
            else:
                tags[name] = "vector"
        return tags


@torch.no_grad()
def init_weights(model: GPT, cfg: ModelConfig) -> None:
    """The one weight init (GPT-2 / nanoGPT scheme).

    - Linear weights and embeddings ~ N(0, init_std): small enough that logits start near
      uniform (loss ~ ln V) and activations do not blow up through the first layers.
    - Residual output projections (every ``c_proj``) ~ N(0, init_std / sqrt(2 * n_layer)): each
      block adds two branches to the residual stream, so its variance grows with the 2*n_layer
      summands; scaling each by 1/sqrt(2*n_layer) keeps the stream's scale independent of depth.
    - Biases = 0 and norm gains = 1: every layer starts as a plain linear map of normalised input.

    A module with its own parameters (a future component) may define ``init_weights(cfg)``; any
    parameter left untouched by both is an error, so a new component cannot silently keep
    ``to_empty`` garbage.
    """
    std = cfg.init_std
    resid_std = std / math.sqrt(2 * cfg.n_layer)
    done: set[int] = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=resid_std if name.endswith("c_proj") else std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, (LayerNorm, RMSNorm)):
            nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif module is not model and hasattr(module, "init_weights"):
            module.init_weights(cfg)
        else:
            continue
        done.update(id(p) for p in module.parameters(recurse=False))
    missed = [n for n, p in model.named_parameters() if id(p) not in done]
    if missed:
        raise RuntimeError(f"init_weights does not know how to initialise: {', '.join(missed)}")


def build_model(cfg: ModelConfig, device: torch.device | str | None = None) -> GPT:
    """Construct on the meta device (no memory, no wasted init), then materialise on ``device``.

    ``to_empty`` allocates uninitialised storage, so the buffers are recomputed and the
    parameters initialised afterwards. Seed with ``torch.manual_seed`` before calling for
    reproducible weights.
    """
    with torch.device("meta"):
        model = GPT(cfg)
    model.to_empty(device=device if device is not None else "cpu")
    model.reset_buffers()
    init_weights(model, cfg)
    return model


def param_counts(model_or_cfg: GPT | ModelConfig) -> dict[str, int]:
    """Parameter counts: total, embedding (lookup tables), non_embedding, active.

    A tied head is wte, counted once (as embedding); an untied head is non-embedding because it
    does a matmul per token. ``active`` = total minus what a token does not use: a module that
    holds parameters only some tokens pass through (MoE experts) says how many a token skips
    with ``inactive_param_count()``; for dense models active == total.
    """
    if isinstance(model_or_cfg, ModelConfig):
        with torch.device("meta"):
            model = GPT(model_or_cfg)
    else:
        model = model_or_cfg
    tags = model.parameter_tags()
    params = dict(model.named_parameters())  # de-duplicates shared parameters
    total = sum(p.numel() for p in params.values())
    embedding = sum(p.numel() for n, p in params.items() if tags[n] == "embedding")
    inactive = sum(m.inactive_param_count() for m in model.modules() if hasattr(m, "inactive_param_count"))
    return {
        "total": total,
        "embedding": embedding,
        "non_embedding": total - embedding,
        "active": total - inactive,
    }
