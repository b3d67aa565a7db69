"""Mixture-of-Experts feed-forward (registry axis ``mlp``, entry ``moe``).

Each token is sent to ``top_k`` of ``n_experts`` routed experts (small MLPs) chosen by a linear
router, plus ``n_shared`` always-on shared experts (DeepSeekMoE). The output is the router-weighted
sum of the chosen experts' outputs. Active work per token is that of ``top_k + n_shared``
experts, while the parameters of all ``n_experts`` are trained: that is the point of MoE.

- **Width.** Each expert's hidden width is ``expert_hidden``, or ``expert_fraction`` times the
  dense width (``hidden`` / ``multiple`` / ``match_gelu_params`` as for a dense MLP): fine-grained
  segmentation splits one dense MLP into narrower experts and routes to more of them.
- **Layers.** MoE in layer ``i`` when ``i >= first_dense`` and ``(i - first_dense) % every == 0``;
  other layers hold a dense MLP of the dense width (DeepSeek-V3 keeps its first layers dense).
- **Router.** ``softmax`` or ``sigmoid`` scores; top-k by score (+ the balancing bias, below);
  the k weights are renormalised to sum to 1 (``renormalize``). No token is dropped unless
  ``capacity_factor`` is set: then an expert takes at most ``ceil(cf * N * k / E)`` of the
  N*k assignments of a batch, earliest tokens first, and the rest pass through with weight 0.
  A capacity makes a token's output depend on other tokens of the batch, later ones included,
  so it is off by default (it breaks causality within a batch).
- **Balancing.** ``aux_loss``: the Switch/GShard loss ``coef * E * sum_e f_e * P_e`` (f_e the
  fraction of assignments to expert e, P_e its mean router probability), returned beside the
  output and added to the training loss. ``aux_free`` (DeepSeek-V3): a per-expert bias added to
  the scores for *selection only*; ``update_balance`` (called once per optimizer step by
  ``lit_algos.training.moe_callbacks``) sums the load over micro-batches and DDP ranks and moves
  each bias by ``bias_update_rate * sign(mean load - load)``, outside autograd. The bias is a
  persistent buffer, so it is saved in checkpoints and restored on resume. ``none``: neither.
- **Dispatch.** No Python loop over tokens: the N*k (token, expert) assignments are sorted by
  expert, the token rows gathered into one contiguous (N*k, C) block, and every expert runs on
  its slice. With ``torch._grouped_mm`` (CPU fp32 with sizes divisible by 4, or CUDA bf16 on
  sm90+) one grouped matmul covers all experts; otherwise a loop over the *experts* (not the
  tokens) runs one matmul per contiguous slice. Both compute the same function (a test checks).
  The outputs are scaled by their weights and scattered back with ``index_add_``.

FLOPs (``flops_per_token``) are the active ones: router ``2*C*E`` plus ``top_k + n_shared``
experts. With a capacity factor, dropped assignments do less work than counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from lit_algos.components.mlp import MLPOptions, dense_mlp
from lit_algos.errors import ConfigError
from lit_algos.registry import registry
from lit_algos.utils.typed import check_choice, check_positive

if TYPE_CHECKING:
    from collections.abc import Callable

    from lit_algos.config.model import ModelConfig

EXPERT_KINDS = ("swiglu", "gelu", "relu", "relu2")
_ACT = {"gelu": F.gelu, "relu": F.relu, "relu2": lambda h: F.relu(h).square()}


@dataclass
class MoEOptions(MLPOptions):
    """MoE options. ``hidden``/``multiple``/``match_gelu_params`` give the dense width (dense
    layers, and the unit of ``expert_fraction``)."""

    expert: str = "swiglu"  # expert MLP: swiglu | gelu | relu | relu2
    n_experts: int = 8  # routed experts
    top_k: int = 2  # routed experts per token
    n_shared: int = 0  # always-on shared experts (DeepSeekMoE), each as wide as a routed one
    expert_hidden: int | None = None  # hidden width of one expert; overrides expert_fraction
    expert_fraction: float = 1.0  # expert width = fraction * dense width (fine-grained when < 1)
    every: int = 1  # MoE in every `every`-th layer from `first_dense` on; dense elsewhere
    first_dense: int = 0  # the first layers stay dense
    router: str = "softmax"  # softmax | sigmoid
    renormalize: bool = True  # the top-k weights sum to 1
    capacity_factor: float | None = None  # null: no token dropping
    balance: str = "aux_free"  # aux_free | aux_loss | none
    aux_loss_coef: float = 0.01  # aux_loss: coefficient of the Switch/GShard loss
    bias_update_rate: float = 1e-3  # aux_free: bias step per optimizer step

    @property
    def gated(self) -> bool:  # type: ignore[override]  (a property here, a class constant in MLPOptions)
        return self.expert == "swiglu"

    def __post_init__(self):
        super().__post_init__()
        check_choice("expert", self.expert, EXPERT_KINDS)
        check_positive("n_experts", self.n_experts)
        check_positive("top_k", self.top_k)
        check_positive("n_shared", self.n_shared, allow_zero=True)
        check_positive("expert_hidden", self.expert_hidden, allow_none=True)
        check_positive("expert_fraction", self.expert_fraction)
        check_positive("every", self.every)
        check_positive("first_dense", self.first_dense, allow_zero=True)
        check_choice("router", self.router, ("softmax", "sigmoid"))
        check_positive("capacity_factor", self.capacity_factor, allow_none=True)
        check_choice("balance", self.balance, ("aux_free", "aux_loss", "none"))
        check_positive("aux_loss_coef", self.aux_loss_coef, allow_zero=True)
        check_positive("bias_update_rate", self.bias_update_rate, allow_zero=True)
        if self.top_k > self.n_experts:
            raise ConfigError(
                "top_k",
                self.top_k,
                f"It must be at most n_experts ({self.n_experts}): a token picks distinct experts.",
            )

    def expert_width(self, model: ModelConfig) -> int:
        if self.expert_hidden is not None:
            return self.expert_hidden
        return int(self.expert_fraction * self.hidden_width(model))

    def is_moe_layer(self, layer_idx: int) -> bool:
        return layer_idx >= self.first_dense and (layer_idx - self.first_dense) % self.every == 0

    def validate(self, model: ModelConfig) -> None:
        if self.expert_width(model) < 1:
            raise ConfigError(
                "expert_fraction",
                self.expert_fraction,
                f"It leaves experts 0 wide ({self.expert_fraction} x dense width {self.hidden_width(model)}); "
                "raise it or set expert_hidden.",
            )
        if not any(self.is_moe_layer(i) for i in range(model.n_layer)):
            raise ConfigError(
                "first_dense",
                self.first_dense,
                f"No layer of {model.n_layer} would be MoE; first_dense must be below n_layer.",
            )


def _grouped_mm_ok(x: torch.Tensor, *widths: int) -> bool:
    if not hasattr(torch, "_grouped_mm"):
        return False
    if x.device.type == "cpu":
        return x.dtype == torch.float32 and all(w % 4 == 0 for w in widths)  # 16-byte strides
    if x.device.type == "cuda":
        return (
            x.dtype == torch.bfloat16
            and torch.cuda.get_device_capability(x.device) >= (9, 0)
            and all(w % 8 == 0 for w in widths)
        )
    return False


class Experts(nn.Module):
    """``n`` expert MLPs stored as stacked (n, out, in) weights, run on rows sorted by expert."""

    def __init__(self, n: int, dim: int, hidden: int, kind: str):
        super().__init__()
        self.kind = kind
        self.w_in = nn.Parameter(torch.empty(n, hidden, dim))  # (E, H, C), like a stack of nn.Linear(C, H)
        self.w_gate = nn.Parameter(torch.empty(n, hidden, dim)) if kind == "swiglu" else None
        self.c_proj = nn.Parameter(torch.empty(n, dim, hidden))  # (E, C, H): the residual projection
        self.use_grouped: bool | None = None  # None: decide per call (_grouped_mm_ok); tests force either

    def init_weights(self, cfg: ModelConfig) -> None:
        std = cfg.init_std
        for w in (self.w_in, self.w_gate):
            if w is not None:
                nn.init.normal_(w, mean=0.0, std=std)
        nn.init.normal_(self.c_proj, mean=0.0, std=std / math.sqrt(2 * cfg.n_layer))  # as every c_proj

    def forward(self, x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """x: (M, C) rows grouped by expert, counts: (E,) rows per expert -> (M, C)."""
        H, C = self.w_in.shape[1], self.w_in.shape[2]
        grouped = self.use_grouped if self.use_grouped is not None else _grouped_mm_ok(x, H, C)
        mm = self._grouped if grouped else self._looped
        h = mm(x, self.w_in, counts)  # (M, H)
        if self.w_gate is not None:
            h = F.silu(mm(x, self.w_gate, counts)) * h
        else:
            h = _ACT[self.kind](h)
        return mm(h, self.c_proj, counts)  # (M, C)

    @staticmethod
    def _grouped(x: torch.Tensor, w: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        offs = torch.cumsum(counts, 0).to(torch.int32)  # end row of each expert's slice
        return torch._grouped_mm(x, w.transpose(-2, -1), offs=offs)  # (M, in) x (E, in, out) -> (M, out)

    @staticmethod
    def _looped(x: torch.Tensor, w: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        # A loop over experts (never tokens): one matmul per contiguous slice of sorted rows.
        outs = [xe @ w[e].T for e, xe in enumerate(torch.split(x, counts.tolist()))]  # (n_e, out) each
        return torch.cat(outs) if outs else x.new_zeros(0, w.shape[1])


class MoEFeedForward(nn.Module):
    """Routed + shared experts in an MoE layer; the dense MLP of the expert kind elsewhere."""

    data_dependent_flops = True  # the FLOP measurement needs real routing (lit_algos.flops)

    def __init__(self, cfg: ModelConfig, layer_idx: int = 0):
        super().__init__()
        opt: MoEOptions = cfg.mlp
        self.opt = opt
        self.layer_idx = layer_idx
        if not opt.is_moe_layer(layer_idx):
            self.dense = dense_mlp(cfg, opt.expert, opt.hidden_width(cfg))
            return
        self.dense = None
        C, H, E = cfg.n_embd, opt.expert_width(cfg), opt.n_experts
        self.router = nn.Linear(C, E, bias=False)
        self.experts = Experts(E, C, H, opt.expert)
        # DeepSeekMoE: the shared experts are one MLP n_shared experts wide (same function, one matmul).
        self.shared = dense_mlp(cfg, opt.expert, opt.n_shared * H) if opt.n_shared else None
        self.dropout = nn.Dropout(cfg.dropout)
        self.register_buffer("expert_bias", torch.zeros(E))  # persistent: checkpoints carry it
        # Load statistics since the last `update_balance`: plain tensors, not buffers, so DDP does
        # not overwrite them with rank 0's at each forward (it broadcasts buffers).
        self.stats: dict[str, torch.Tensor] = {}

    def reset_buffers(self) -> None:
        if self.dense is None:
            self.expert_bias.zero_()  # to_empty leaves garbage; a checkpoint load overwrites this
        self.stats = {}

    def inactive_param_count(self) -> int:
        """Parameters of the routed experts a token does not go through."""
        if self.dense is not None:
            return 0
        per_expert = sum(p[0].numel() for p in self.experts.parameters())
        return (self.opt.n_experts - self.opt.top_k) * per_expert

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor | None]:
        if self.dense is not None:
            return self.dense(x)
        opt = self.opt
        B, T, C = x.shape
        E, k = opt.n_experts, opt.top_k
        flat = x.reshape(B * T, C)  # (N, C)
        N = flat.size(0)
        logits = self.router(flat).float()  # (N, E); routing in float32 whatever the compute dtype
        scores = logits.softmax(-1) if opt.router == "softmax" else logits.sigmoid()  # (N, E)
        choose = scores.detach() + self.expert_bias if opt.balance == "aux_free" else scores.detach()
        expert_of = choose.topk(k, dim=-1).indices  # (N, k): the bias moves the choice, not the weights
        weights = scores.gather(-1, expert_of)  # (N, k)
        if opt.renormalize:
            weights = weights / weights.sum(-1, keepdim=True)

        flat_expert = expert_of.reshape(-1)  # (N*k,) expert of each assignment, token-major
        order = torch.argsort(flat_expert, stable=True)  # assignments grouped by expert, tokens in order
        counts = torch.bincount(flat_expert, minlength=E)  # (E,)
        token = order // k  # (N*k,) the token of each sorted assignment
        w_sorted = weights.reshape(-1)[order].to(x.dtype)  # (N*k,)
        routed = counts
        if opt.capacity_factor is not None:
            capacity = math.ceil(opt.capacity_factor * N * k / E)
            starts = torch.cumsum(counts, 0) - counts  # (E,) first sorted row of each expert
            rank = (
                torch.arange(N * k, device=x.device) - starts[flat_expert[order]]
            )  # place in its expert's queue
            keep = rank < capacity
            token, w_sorted = token[keep], w_sorted[keep]
            routed = counts.clamp(max=capacity)
        ys = self.experts(flat[token], routed)  # (M, C): gathered rows, contiguous per expert
        # (N, C); .to: under autocast the expert matmuls may come back in a lower precision
        out = torch.zeros_like(flat).index_add_(0, token, (ys * w_sorted[:, None]).to(flat.dtype))
        if self.shared is not None:
            out = out + self.shared(flat)

        if self.training:
            self._record(counts, scores)
        aux = None
        if opt.balance == "aux_loss" and self.training:
            probs = scores if opt.router == "softmax" else scores / scores.sum(-1, keepdim=True)
            fraction = counts.float() / (N * k)  # f_e (no gradient)
            aux = opt.aux_loss_coef * E * (fraction * probs.mean(0)).sum()
        return self.dropout(out.view(B, T, C)), aux

    @torch.no_grad()
    def _record(self, counts: torch.Tensor, scores: torch.Tensor) -> None:
        probs = scores if self.opt.router == "softmax" else scores / scores.sum(-1, keepdim=True)
        entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)  # (N,) nats
        new = {
            "counts": counts.float(),
            "entropy_sum": entropy.sum().reshape(1),
            "tokens": torch.tensor([float(scores.size(0))], device=scores.device),
        }
        for key, value in new.items():
            self.stats[key] = self.stats[key] + value if key in self.stats else value

    @staticmethod
    def flops_per_token(cfg: ModelConfig, layer_idx: int = 0) -> dict[str, float]:
        opt: MoEOptions = cfg.mlp
        C = cfg.n_embd
        n_mats = 3 if opt.gated else 2
        if not opt.is_moe_layer(layer_idx):
            return {"mlp": n_mats * 2 * C * opt.hidden_width(cfg)}
        per_expert = n_mats * 2 * C * opt.expert_width(cfg)
        return {"router": 2 * C * opt.n_experts, "mlp": (opt.top_k + opt.n_shared) * per_expert}


def moe_layers(model: nn.Module) -> list[MoEFeedForward]:
    """The routed MoE layers of ``model`` (dense layers of an MoE model left out), in order."""
    return [m for m in model.modules() if isinstance(m, MoEFeedForward) and m.dense is None]


@torch.no_grad()
def update_balance(
    model: nn.Module, reduce_sum: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> list[dict[str, Any]]:
    """Once per optimizer step: sum each layer's load since the last call over ranks
    (``reduce_sum``, e.g. an all-reduce), move the aux-free biases, reset the counters.

    One all-reduce for all layers. Every rank gets the same sums, so every rank applies the same
    update and the biases stay identical across DDP ranks. Returns per-layer statistics:
    ``counts`` (tokens per expert), ``fraction``, ``max_over_mean`` load, ``entropy`` (mean router
    entropy, nats) and ``bias`` (after the update). Layers that saw no token are skipped.
    """
    layers = [m for m in moe_layers(model) if m.stats]
    if not layers:
        return []
    packed = torch.stack(
        [torch.cat([m.stats["counts"], m.stats["entropy_sum"], m.stats["tokens"]]) for m in layers]
    )  # (L, E + 2); every layer of a model has the same E
    if reduce_sum is not None:
        packed = reduce_sum(packed)
    out = []
    for m, row in zip(layers, packed, strict=True):
        E = m.opt.n_experts
        counts, entropy_sum, tokens = row[:E], row[E], row[E + 1]
        if m.opt.balance == "aux_free" and m.opt.bias_update_rate > 0:
            error = counts.mean() - counts  # > 0 for an under-loaded expert: raise its bias
            m.expert_bias.add_(torch.sign(error).to(m.expert_bias.dtype), alpha=m.opt.bias_update_rate)
        m.stats = {}
        mean = counts.mean()
        out.append(
            {
                "layer": m.layer_idx,
                "counts": counts.tolist(),
                "fraction": (counts / counts.sum()).tolist(),
                "max_over_mean": float(counts.max() / mean) if mean > 0 else float("nan"),
                "entropy": float(entropy_sum / tokens),
                "bias": m.expert_bias.tolist(),
            }
        )
    return out


registry("mlp").register(
    "moe",
    help="Mixture of experts: top-k routed + shared experts, aux-loss or aux-free (bias) balancing.",
    options=MoEOptions,
    uses=("n_embd", "n_layer", "bias", "dropout"),
    example={"n_experts": 4, "top_k": 2, "n_shared": 1, "expert_fraction": 0.25},
)(MoEFeedForward)
