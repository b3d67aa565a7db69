"""Muon for hidden weight matrices, AdamW for everything else, in one ``torch.optim.Optimizer``.

Muon (MomentUm Orthogonalized by Newton-Schulz, Jordan et al. 2024) keeps a momentum buffer per
matrix and, instead of applying it directly, applies the nearest semi-orthogonal matrix to it:
if the update is ``U S V^T``, Muon steps along ``U V^T``. Every direction of the matrix then moves
by the same amount, so rare directions are not drowned by the dominant ones. ``U V^T`` is
approximated with a few Newton-Schulz iterations (matmuls only, no SVD).

Embeddings, the LM head and 1-D parameters (norm gains, biases) are not hidden linear maps, so
they keep AdamW. Both live in one optimizer, one param group per parameter tag, each group
carrying ``use_muon``: Lightning's gradient clipping, accumulation, checkpointing and LR
schedulers see a single ordinary optimizer.

In DDP every rank holds the full, already all-reduced gradient and computes the same update.
Under FSDP a rank holds only a shard of each matrix, and orthogonalising a shard is not
orthogonalising the matrix: ``MuonOptions.validate`` refuses ``muon`` with FSDP.

The registry entry ``muon`` (``optim: {kind: muon, muon_lr: 0.02, ...}``) is at the end of this file.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lit_algos.optim.optimizers import OPTIMIZERS, AdamOptions, tagged_groups
from lit_algos.precision import native_bf16
from lit_algos.registry import ParentFieldError
from lit_algos.utils.typed import check_choice, check_positive, check_range

# Quintic iteration X <- a X + b (X X^T) X + c (X X^T)^2 X. These coefficients (from the Muon write-up)
# give a steep slope at 0, so small singular values grow fast, at the cost of the fixed point being a
# band around 1 (roughly 0.7..1.2) rather than exactly 1. For an optimizer step that is good enough.
NS_COEFFS = (3.4445, -4.7750, 2.0315)


@functools.cache
def _cpu_has_native_bf16() -> bool:
    return native_bf16("cpu")


NS_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


def ns_dtype(device: torch.device, name: str | None = None) -> torch.dtype:
    """The working precision of Newton-Schulz: ``name`` (bfloat16 | float32) when given, else bf16
    on CUDA and on CPUs that run it natively (AVX-512-BF16 / AMX), float32 elsewhere (emulated
    bf16 is ~10x slower)."""
    if name is not None:
        return NS_DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if _cpu_has_native_bf16() else torch.float32


def newton_schulz(
    g: torch.Tensor, steps: int = 5, eps: float = 1e-7, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Approximately orthogonalise a matrix, or a batch of same-shape matrices: ``U S V^T -> U S' V^T``.

    ``g``: (m, n) or (k, m, n); each matrix of a batch is orthogonalised on its own (one batched
    matmul per iteration instead of k small ones). ``dtype`` is the working precision (default:
    bfloat16 on CUDA and on CPUs with native bf16, float32 elsewhere; the iteration is stable in
    bf16). The result has ``g``'s shape and dtype.
    """
    if g.ndim not in (2, 3):
        raise ValueError(f"newton_schulz expects a matrix or a batch of matrices, got shape {tuple(g.shape)}")
    if dtype is None:
        dtype = ns_dtype(g.device)
    a, b, c = NS_COEFFS
    x = g.to(dtype)
    single = x.ndim == 2
    if single:
        x = x[None]  # (1, m, n): one code path, baddbmm below
    transposed = x.size(-2) > x.size(-1)
    if transposed:  # iterate on the wide orientation so the Gram matrix X X^T is the small one
        x = x.mT  # (k, m, n) with m <= n
    # Scale so every singular value is <= 1 (spectral norm <= Frobenius norm): the iteration's basin.
    x = x / (torch.linalg.matrix_norm(x, keepdim=True) + eps)
    for _ in range(steps):
        gram = x @ x.mT  # (k, m, m)
        # baddbmm folds the scalings and sums into the matmuls (one rounding, no separate passes).
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)  # b G + c G^2: (k, m, m)
        x = torch.baddbmm(x, poly, x, beta=a)  # a X + poly X: (k, m, n)
    if transposed:
        x = x.mT
    if single:
        x = x[0]
    return x.to(g.dtype)


def muon_scale(shape: torch.Size) -> float:
    """Per-matrix LR factor: sqrt(max(1, fan_out / fan_in)).

    An orthogonal update of a tall matrix (fan_out > fan_in) has a smaller per-entry RMS than that
    of a wide one; the factor keeps the size of the change of the layer's outputs comparable
    across shapes, so one ``muon_lr`` fits every matrix.
    """
    fan_out, fan_in = shape[0], max(1, int(torch.Size(shape[1:]).numel()))
    return max(1.0, fan_out / fan_in) ** 0.5


class Muon(torch.optim.Optimizer):
    """Muon on groups with ``use_muon=True``, AdamW on the others.

    Muon group keys: ``lr``, ``momentum``, ``nesterov``, ``ns_steps``, ``ns_dtype`` (None: see
    ``ns_dtype``), ``weight_decay`` (decoupled, ``p *= 1 - lr * wd``). AdamW group keys: ``lr``,
    ``betas``, ``eps``, ``weight_decay`` (decoupled, as ``torch.optim.AdamW``). Missing keys take
    the constructor defaults. Matrices of one shape are orthogonalised together (one batched
    Newton-Schulz, the same result as one per matrix).
    """

    def __init__(
        self,
        param_groups: Iterable[dict[str, Any]],
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_steps: int = 5,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        ns_dtype: str | None = None,
    ):
        groups = [dict(g) for g in param_groups]
        for group in groups:
            group.setdefault("use_muon", False)
            if group["use_muon"]:
                for p in group["params"]:
                    if p.ndim < 2:
                        raise ValueError(
                            f"Muon orthogonalises matrices; a parameter of shape {tuple(p.shape)} belongs in an AdamW group"
                        )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            ns_steps=ns_steps,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            ns_dtype=ns_dtype,  # a name, not a torch.dtype: the state dict loads with weights_only=True
        )
        super().__init__(groups, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["use_muon"]:
                self._muon_step(group)
            else:
                self._adamw_step(group)
        return loss

    def _muon_step(self, group: dict[str, Any]) -> None:
        lr, wd, mom = group["lr"], group["weight_decay"], group["momentum"]
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        for p in params:
            if "momentum_buffer" not in self.state[p]:
                self.state[p]["momentum_buffer"] = torch.zeros_like(p.grad)
        bufs = [self.state[p]["momentum_buffer"] for p in params]
        # One foreach call per operation over every matrix (not one Python-level op per matrix).
        torch._foreach_mul_(bufs, mom)
        torch._foreach_add_(bufs, grads)
        # Nesterov: look ahead along the momentum, i.e. use grad + mom * buf instead of buf.
        updates = torch._foreach_add(grads, bufs, alpha=mom) if group["nesterov"] else bufs
        # Matrices of one shape are orthogonalised together (a batched Newton-Schulz).
        by_shape: dict[tuple, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for p, update in zip(params, updates, strict=True):
            update = update.reshape(update.size(0), -1)  # (out, in*...)
            by_shape.setdefault((tuple(update.shape), update.dtype, update.device), []).append((p, update))
        if wd:
            torch._foreach_mul_(params, 1.0 - lr * wd)
        for items in by_shape.values():
            dtype = ns_dtype(items[0][1].device, group.get("ns_dtype"))
            orthos = newton_schulz(
                torch.stack([u for _, u in items]), steps=group["ns_steps"], dtype=dtype
            ).unbind(0)
            shaped = [p for p, _ in items]
            torch._foreach_add_(
                shaped, [o.view_as(p) for p, o in zip(shaped, orthos, strict=True)],
                alpha=-lr * muon_scale(shaped[0].shape),
            )  # fmt: skip

    def _adamw_step(self, group: dict[str, Any]) -> None:
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
        # Parameters step together, so they share a step count (and bias corrections); group by it
        # for the rare parameter that missed a step (no gradient).
        by_step: dict[int, list[torch.Tensor]] = {}
        for p in params:
            by_step.setdefault(self.state[p]["step"], []).append(p)
        for t, ps in by_step.items():
            grads = [p.grad for p in ps]
            exp_avg = [self.state[p]["exp_avg"] for p in ps]
            exp_avg_sq = [self.state[p]["exp_avg_sq"] for p in ps]
            torch._foreach_lerp_(exp_avg, grads, 1.0 - beta1)
            torch._foreach_mul_(exp_avg_sq, beta2)
            torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1.0 - beta2)
            if wd:
                torch._foreach_mul_(ps, 1.0 - lr * wd)
            bias1 = 1.0 - beta1**t
            bias2 = 1.0 - beta2**t
            denom = torch._foreach_div(exp_avg_sq, bias2)
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, eps)
            torch._foreach_addcdiv_(ps, exp_avg, denom, value=-lr / bias1)


@dataclass
class MuonOptions(AdamOptions):
    """Muon's own fields; ``lr``, ``betas``, ``eps`` and ``weight_decay`` are those of its AdamW groups."""

    muon_lr: float = 0.02  # LR of the hidden 2-D matrices
    muon_momentum: float = 0.95
    muon_nesterov: bool = True
    muon_ns_steps: int = 5  # Newton-Schulz iterations that orthogonalise each update
    muon_weight_decay: float | None = None  # decoupled decay of the muon matrices; null: weight_decay
    muon_ns_dtype: str | None = None  # bfloat16 | float32; null: bf16 where native (CUDA, AVX-512-BF16/AMX)

    def __post_init__(self):
        super().__post_init__()
        check_positive("muon_lr", self.muon_lr)
        check_positive("muon_ns_steps", self.muon_ns_steps)
        check_positive("muon_weight_decay", self.muon_weight_decay, allow_zero=True, allow_none=True)
        check_range("muon_momentum", self.muon_momentum, 0.0, 1.0)
        if self.muon_ns_dtype is not None:
            check_choice("muon_ns_dtype", self.muon_ns_dtype, tuple(NS_DTYPES))

    def validate(self, config) -> None:
        if config.train.strategy == "fsdp":
            raise ParentFieldError(
                "train.strategy",
                "fsdp",
                "Muon orthogonalises whole matrices, and FSDP gives each rank a shard of them; use ddp with "
                "optim.kind=muon, or another optimizer with fsdp.",
            )


@OPTIMIZERS.register(
    "muon",
    help="Muon on hidden matrices + AdamW on embeddings, head and vectors",
    options=MuonOptions,
    example={"lr": 0.01, "muon_lr": 0.05},
)
def _muon(model: nn.Module, cfg: MuonOptions, tags: dict[str, str] | None = None) -> torch.optim.Optimizer:
    groups = tagged_groups(model, cfg, tags=tags)
    for group in groups:  # the hidden matrices get Muon's rule, the rest AdamW's
        group["use_muon"] = group["tag"] == "matrix"
        if group["use_muon"]:
            wd = cfg.weight_decay if cfg.muon_weight_decay is None else cfg.muon_weight_decay
            group.update(lr=cfg.muon_lr, initial_lr=cfg.muon_lr, weight_decay=wd)
    return Muon(
        groups,
        lr=cfg.lr, momentum=cfg.muon_momentum, nesterov=cfg.muon_nesterov, ns_steps=cfg.muon_ns_steps,
        betas=cfg.betas, eps=cfg.eps, ns_dtype=cfg.muon_ns_dtype,
    )  # fmt: skip
