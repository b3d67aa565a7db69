"""The composable GPT: token embedding -> n_layer blocks -> final norm -> LM head.

Every swappable piece comes from a registry (``lit_algos.components``) by the name in the
``ModelConfig``; this file only wires them together, initialises the weights and counts
parameters. No training machinery lives here (no optimizer, precision or compile).

    model = build_model(cfg, device="cuda")    # meta-device construction, then init on device
    logits, loss = model(idx, targets)         # (B, T) -> (B, T, V), mean cross-entropy (-100 ignored)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import lit_algos.components  # noqa: F401  (fills the registries)
from lit_algos.components.norm import LayerNorm, NoNorm, RMSNorm, build_norm
from lit_algos.config.model import ModelConfig
from lit_algos.loss import lm_loss
from lit_algos.registry import registry

IGNORE_INDEX = -100  # targets to skip in the loss: PyTorch's default, used by the data and every evaluation


class Block(nn.Module):
    """One transformer block. ``pre``: x + f(norm(x)) (GPT-2 onwards); ``post``: norm(x + f(x)) (Vaswani).

    A sub-layer (attention or mlp entry) returns either its output or ``(output, aux_loss)``; the
    block adds up the auxiliary losses (e.g. an MoE load-balancing loss) and returns them beside x.
    """

    def __init__(self, cfg: ModelConfig, layer_idx: int = 0):
        super().__init__()
        self.pre_norm = cfg.norm.placement == "pre"
        self.norm_1 = build_norm(cfg)
        self.attn = registry("attention").get(cfg.attention.kind)(cfg, layer_idx)
        self.norm_2 = build_norm(cfg)
        self.mlp = registry("mlp").get(cfg.mlp.kind)(cfg, layer_idx)

    def forward(self, x: torch.Tensor, pos: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        aux = None
        if self.pre_norm:
            y, aux = _split_aux(self.attn(self.norm_1(x), pos), aux)
            x = x + y
            y, aux = _split_aux(self.mlp(self.norm_2(x)), aux)
            x = x + y
        else:
            y, aux = _split_aux(self.attn(x, pos), aux)
            x = self.norm_1(x + y)
            y, aux = _split_aux(self.mlp(x), aux)
            x = self.norm_2(x + y)
        return x, aux  # (B, T, C), scalar or None


def _split_aux(out, aux: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A sub-layer's output and the running auxiliary loss plus the sub-layer's own (if any)."""
    if isinstance(out, tuple):
        out, extra = out
        if extra is not None:
            aux = extra if aux is None else aux + extra
    return out, aux


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        # One position module for the whole model; blocks receive it in forward (see position.py).
        self.pos = registry("position").get(cfg.position.kind)(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        if cfg.mixer == "lstm":  # the same shell around an LSTM instead of the blocks
            from lit_algos.components.lstm import LSTMMixer

            self.blocks, self.lstm = nn.ModuleList(), LSTMMixer(cfg)
        else:
            self.blocks, self.lstm = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer)), None
        self.norm_f = build_norm(cfg) if cfg.final_norm else NoNorm(cfg.n_embd)
        # Tied: the head reuses wte.weight through F.linear, so there is no second parameter to
        # keep tied (to_empty would silently untie a shared nn.Parameter). The head has no bias.
        self.lm_head = None if cfg.tie_embeddings else nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)

    @property
    def head_weight(self) -> torch.Tensor:
        """The LM head's weight (V, C): the token embedding when tied."""
        return self.wte.weight if self.lm_head is None else self.lm_head.weight  # (V, C)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        return_aux: bool = False,
        loss_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None] | tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """idx: (B, T) token ids; targets: (B, T) ids or None (IGNORE_INDEX = -100: no loss there).

        Returns (logits (B, T, V), loss): the mean language-model cross-entropy over the targets that
        are not ignored (NaN when every target is ignored). With ``return_aux=True`` also the sum of
        the blocks' auxiliary losses (a scalar, 0 when no component has one): the training step adds
        it to the loss and logs it separately. With ``loss_only=True`` (and targets) the logits are
        None: the head and the loss run in row chunks (``lit_algos.loss``) and the full (B, T, V)
        logits are never materialised.
        """
        B, T = idx.size()
        if T > self.cfg.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.cfg.block_size}")
        x = self.pos.embed(self.wte(idx))  # (B, T, C)
        x = self.drop(x)
        aux_total = None
        if self.lstm is not None:
            x = self.lstm(x)  # (B, T, C)
        for block in self.blocks:
            x, aux = block(x, self.pos)
            if aux is not None:
                aux_total = aux if aux_total is None else aux_total + aux
        x = self.norm_f(x)
        if loss_only and targets is not None:
            # reshape, not view: the LSTM mixer's output is not contiguous
            loss = lm_loss(
                x.reshape(B * T, -1), self.head_weight, targets.reshape(B * T), self.cfg.logit_softcap
            )
            aux_total = aux_total if aux_total is not None else loss.new_zeros(())
            return (None, loss, aux_total) if return_aux else (None, loss)
        logits = F.linear(x, self.head_weight)  # (B, T, V)
        if self.cfg.logit_softcap is not None:
            cap = self.cfg.logit_softcap
            logits = cap * torch.tanh(logits / cap)  # smoothly bounded to (-cap, cap)
        loss = None
        if targets is not None:
            # The loss in float32 whatever the compute dtype: log-softmax over V is precision-sensitive.
            loss = F.cross_entropy(
                logits.view(B * T, -1).float(), targets.reshape(B * T), ignore_index=IGNORE_INDEX
            )
        if return_aux:
            return (
                logits,
                loss,
                aux_total if aux_total is not None else logits.new_zeros((), dtype=torch.float32),
            )
        return logits, loss

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
