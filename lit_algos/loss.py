"""The language-model loss: one ``lm_loss`` with two strategies, chunked (the default) and plain.

``lm_loss(x, weight, targets, softcap, chunked=...)`` is the mean cross-entropy of the soft-capped
LM head ``softcap(x @ weight.T)`` against ``targets``, over the targets that are not
``IGNORE_INDEX`` (NaN when there are none, as ``F.cross_entropy``). This module owns the ignore
index and the soft-cap; ``lit_algos.model.GPT`` calls it for training, evaluation and its forward.

- **plain**: the full logits (``head_logits``), then ``F.cross_entropy`` in float32
  (``logits_cross_entropy``). What the GPT's forward returns beside its logits.
- **chunked**: the same loss without the full logits (below); what training and evaluation use.

Training and evaluation need only the mean cross-entropy, not the (B*T, V) logits. Computing
``F.linear`` then ``F.cross_entropy`` materialises the logits, their fp32 copy, the softmax and
its gradient: at B*T = 4096 rows and V = 4096 that is four 67 MB buffers per step, which glibc
hands back to the OS and faults in again every step (tens of seconds of system time per run).
``chunked_linear_cross_entropy`` walks the rows in chunks; for each it computes the chunk's
logits (fp32 for the log-sum-exp), its loss and, when a gradient is wanted, the gradient of the
chunk's logits, which it turns at once into the gradients of the hidden states and of the head
weight (the backward pass then only scales them). No extra FLOPs, peak memory of one chunk.
Those two matmuls run in autocast's dtype where autocast is on (bf16 under bf16-mixed, as the
plain path's backward); the head-weight gradient still sums its chunks in fp32.

The logit soft-cap (``cap * tanh(z / cap)``) is applied per chunk with its derivative. Targets
equal to ``IGNORE_INDEX`` count for nothing. ``train.chunked_loss: false`` trains with the plain
strategy instead, e.g. to measure the difference (``lit-algos benchmark --ab train.chunked_loss=false``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # targets to skip: PyTorch's default, used by the data and every evaluation
CHUNK_ELEMENTS = 1 << 21  # logits per chunk (8 MB in fp32): below glibc's largest mmap threshold


def chunk_rows(vocab_size: int) -> int:
    return max(16, CHUNK_ELEMENTS // max(1, vocab_size))


def _chunk(xc, weight, tc, softcap, want_grad, grad_dtype=None):
    """Loss sum of one chunk and, with ``want_grad``, the gradient of that sum w.r.t. its logits
    (in ``grad_dtype``, default fp32)."""
    z = F.linear(xc, weight).float()  # (n, V)
    t = None
    if softcap is not None:
        t = torch.tanh(z / softcap)
        z = softcap * t
    valid = tc != IGNORE_INDEX
    tgt = torch.where(valid, tc, 0)
    if want_grad and torch.compiler.is_compiling():
        return _compiled_chunk(z, t, tgt, valid, grad_dtype)
    lse = torch.logsumexp(z, dim=-1)  # (n,)
    loss_sum = ((lse - z.gather(1, tgt[:, None]).squeeze(1)) * valid).sum()
    if not want_grad:
        return loss_sum, None
    # Eager: in place of the logits, no extra (n, V) buffers.
    p = z.sub_(lse[:, None]).exp_()  # softmax
    p.scatter_add_(1, tgt[:, None], -valid[:, None].to(p.dtype))  # - one-hot of the target
    p.mul_(valid[:, None])
    if t is not None:
        p.mul_(1 - t * t)
    return loss_sum, p.to(grad_dtype or p.dtype)


def _compiled_chunk(z, t, tgt, valid, grad_dtype):
    """``_chunk``'s loss and logit gradient as inductor should see them: one exponential a logit.

    The row's ``exp(z - max)`` is computed once and used twice, for the sum (the log-sum-exp) and
    for the gradient ``softmax - one-hot`` (masked, soft-capped, cast) as ``e / sum``; inductor
    keeps it in a row-sized buffer between the two (``logsumexp`` then ``exp(z - lse)`` computed it
    twice: the exps were the head's slowest part of a bf16 step). No in-place ops (a scatter would
    split the pass)."""
    m = z.amax(dim=1, keepdim=True)  # (n, 1)
    e = torch.exp(z - m)  # (n, V)
    s = e.sum(dim=1, keepdim=True)
    lse = (m + torch.log(s)).squeeze(1)  # (n,)
    loss_sum = ((lse - z.gather(1, tgt[:, None]).squeeze(1)) * valid).sum()
    onehot = torch.arange(z.size(1), device=z.device) == tgt[:, None]  # (n, V)
    p = (e * (1.0 / s) - onehot.to(z.dtype)) * valid[:, None]
    if t is not None:  # d(cap tanh(z/cap))/dz = 1 - tanh^2
        p = p * (1 - t * t)
    return loss_sum, p.to(grad_dtype or p.dtype)


def _matmul_dtype(x: torch.Tensor, weight: torch.Tensor) -> torch.dtype:
    """The dtype the head's matmuls run in: autocast's where it is on (as in the plain path's
    backward), else the inputs' common dtype."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return torch.promote_types(x.dtype, weight.dtype)


class _ChunkedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, targets, softcap, rows):
        n_valid = (targets != IGNORE_INDEX).sum()
        total = x.new_zeros((), dtype=torch.float32)
        grad_x = torch.empty_like(x)
        grad_w = torch.zeros_like(weight, dtype=torch.float32)  # chunks summed in fp32
        mm_dtype = _matmul_dtype(x, weight)
        w = weight.to(mm_dtype)  # cast once, not in every chunk's F.linear (no autocast cache in here)
        for s in range(0, x.size(0), rows):
            xc, tc = x[s : s + rows], targets[s : s + rows]  # (n, C), (n,)
            loss_sum, dz = _chunk(xc, w, tc, softcap, True, mm_dtype)  # dz: (n, V)
            total = total + loss_sum
            grad_x[s : s + rows] = (dz @ w).to(x.dtype)  # (n, C)
            # In mm_dtype (bf16 under bf16 autocast, as the plain path's weight gradient); an
            # fp32 addmm here was the slowest matmul of a bf16 step.
            grad_w.add_(dz.mT @ xc.to(mm_dtype))  # (V, C)
        scale = 1.0 / n_valid.float()
        ctx.save_for_backward(grad_x, grad_w, scale)
        ctx.weight_dtype = weight.dtype
        return total * scale

    @staticmethod
    def backward(ctx, grad_out):
        grad_x, grad_w, scale = ctx.saved_tensors
        g = grad_out * scale
        return (grad_x * g.to(grad_x.dtype)), (grad_w * g).to(ctx.weight_dtype), None, None, None


def chunked_linear_cross_entropy(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None = None
) -> torch.Tensor:
    """Mean cross-entropy of ``softcap(x @ weight.T)`` against ``targets`` without the full logits.

    x: (N, C) hidden states, weight: (V, C) head, targets: (N,) ids or IGNORE_INDEX.
    """
    rows = chunk_rows(weight.size(0))
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return _ChunkedLinearCE.apply(x, weight, targets, softcap, rows)
    total = x.new_zeros((), dtype=torch.float32)
    w = weight.to(_matmul_dtype(x, weight))
    for s in range(0, x.size(0), rows):
        total = total + _chunk(x[s : s + rows], w, targets[s : s + rows], softcap, False)[0]
    return total / (targets != IGNORE_INDEX).sum()


def head_logits(x: torch.Tensor, weight: torch.Tensor, softcap: float | None = None) -> torch.Tensor:
    """The LM head: ``x @ weight.T`` (..., V), soft-capped to ``(-cap, cap)`` by ``cap * tanh(z / cap)``."""
    logits = F.linear(x, weight)
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)  # smoothly bounded to (-cap, cap)
    return logits


def logits_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (..., V) logits against (...) targets, IGNORE_INDEX skipped; in float32
    whatever the compute dtype (log-softmax over V is precision-sensitive)."""
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX
    )


def plain_linear_cross_entropy(
    x: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None = None
) -> torch.Tensor:
    """The reference strategy: full logits, then ``F.cross_entropy`` in fp32."""
    return logits_cross_entropy(head_logits(x, weight, softcap), targets)


def lm_loss(
    x: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    softcap: float | None = None,
    *,
    chunked: bool = True,
) -> torch.Tensor:
    """The mean LM loss of hidden states ``x`` (N, C) under head ``weight`` (V, C) against ``targets``
    (N,): chunked (no full logits) or plain (full logits); the same value up to float rounding."""
    fn = chunked_linear_cross_entropy if chunked else plain_linear_cross_entropy
    return fn(x, weight, targets, softcap)
