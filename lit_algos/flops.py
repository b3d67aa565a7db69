"""FLOPs per token: an analytic count for every component, a measured count to check it, and peak
FLOP/s per device for MFU.

Conventions (both counts follow them, so they can be compared exactly):

- Only matrix multiplies count, at 2*m*n*k FLOPs (a multiply and an add). Elementwise work
  (norms, activations, softmax, RoPE, biases, the ALiBi bias, the loss) is left out, as in
  ``torch.utils.flop_counter.FlopCounterMode``, nanoGPT and nanochat; it is a few percent at most.
- Attention scores are counted over the full T x T square, not the causal half: per token and
  layer ``2 * 2 * n_head * head_size * T`` for q.k^T and att.v, with T = ``block_size``. This is
  what kernels and FlopCounterMode count, and it matches nanochat's 12 * l * h * q * T term.
- Training = 3 x forward: the backward of each matmul is two matmuls of the same size (gradient
  of the input and of the weight). Activation recomputation is not counted, so a fused
  attention kernel that recomputes scores does more work than this figure; the measurement
  therefore runs the math backend on the meta device, where no kernel recomputes.
- Embedding lookups are free; the LM head (tied or not) is a (C x V) matmul per token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode, flop_registry, register_flop_formula

from lit_algos.config.model import ModelConfig
from lit_algos.model import GPT, build_model
from lit_algos.registry import registry


def _register_grouped_mm_formula() -> None:
    """Teach FlopCounterMode ``aten._grouped_mm`` (MoE experts): 2 x rows x inner x cols, as for mm.

    The shapes (offsets split one operand into groups; the sum over groups is the plain product):
    (M, K) x (E, K, N) -> (M, N); (K, M) x (M, N) -> (E, K, N), the weight gradient; (E, M, K) x
    (K, N) -> (M, N); (E, M, K) x (E, K, N) -> (E, M, N), batched.
    """

    op = getattr(torch.ops.aten, "_grouped_mm", None)
    if op is None or op.default in flop_registry or op in flop_registry:
        return

    @register_flop_formula(op)
    def grouped_mm_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
        if len(a_shape) == 2 and len(b_shape) == 3:
            return 2 * a_shape[0] * a_shape[1] * b_shape[2]
        if len(a_shape) == 2 and len(b_shape) == 2:
            return 2 * a_shape[0] * a_shape[1] * b_shape[1]
        if len(a_shape) == 3 and len(b_shape) == 2:
            return 2 * a_shape[1] * a_shape[2] * b_shape[1]
        return 2 * a_shape[0] * a_shape[1] * a_shape[2] * b_shape[2]


_register_grouped_mm_formula()


@dataclass
class FlopsReport:
    per_token_forward: float  # forward matmul FLOPs per token
    per_token_train: float  # forward + backward = 3 x forward
    breakdown: dict[str, float] = field(default_factory=dict)  # forward FLOPs per token by component
    seq_len: int = 0  # the T used for the attention term

    def per_step(self, tokens: int) -> float:
        """Training FLOPs for a step over ``tokens`` tokens."""
        return self.per_token_train * tokens


def estimate_flops(cfg: ModelConfig, *, ideal: bool = False) -> FlopsReport:
    """Analytic forward and training FLOPs per token of ``cfg`` at sequence length ``block_size``.

    Each component reports its own matmul FLOPs (the mixer's ``flops_per_token(cfg, ideal)``,
    which the transformer sums from its attention and mlp entries' ``flops_per_token(cfg,
    layer_idx)``; ``flops_per_token(cfg)`` for position), so a new registry entry carries its own
    accounting. For sparse entries (MoE) these are the *active* FLOPs: what one token goes
    through. Breakdown keys: attn_qkv, attn_scores, attn_out, mlp (summed over layers), those of
    other entries (e.g. router), position (if any), lm_head.

    ``ideal=True``: for an attention entry with ``ideal_flops_per_token`` (sparse), the count of
    a kernel that skips every masked score; otherwise the same as the default. The default (the
    work actually executed) is what records call ``analytic`` and what CEG uses.
    """

    breakdown: dict[str, float] = {}
    for counts in (
        registry("mixer").get(cfg.mixer.kind).flops_per_token(cfg, ideal=ideal),
        registry("position").get(cfg.position.kind).flops_per_token(cfg),
    ):
        for key, value in counts.items():
            breakdown[key] = breakdown.get(key, 0.0) + float(value)
    breakdown["lm_head"] = 2.0 * cfg.n_embd * cfg.vocab_size
    forward = sum(breakdown.values())
    return FlopsReport(
        per_token_forward=forward, per_token_train=3.0 * forward, breakdown=breakdown, seq_len=cfg.block_size
    )


def record_flops(cfg: ModelConfig) -> dict[str, float]:
    """The ``flops_per_token`` of a run record: ``analytic`` (executed; CEG uses it), ``measured``
    (FlopCounterMode) and, for sparse attention, ``ideal`` (attended pairs only)."""
    out = {"analytic": estimate_flops(cfg).per_token_train, "measured": measure_flops(cfg)}
    attn = registry("attention").get(cfg.attention.kind)
    if registry("mixer").get(cfg.mixer.kind).has_attention and hasattr(attn, "ideal_flops_per_token"):
        out["ideal"] = estimate_flops(cfg, ideal=True).per_token_train
    return out


def measure_flops(cfg: ModelConfig, batch_size: int = 1) -> float:
    """Training (forward + backward) FLOPs per token counted by FlopCounterMode on a meta model.

    Nothing is allocated or computed: the meta device only propagates shapes, so this is cheap
    even for large configs. Dropout is switched off (eval mode) as it adds no matmuls anyway.
    Models with a data-dependent component (``data_dependent_flops``, e.g. MoE routing) run on
    the CPU instead, with real weights and tokens.
    """

    with torch.device("meta"):
        model = GPT(cfg)
    device = "meta"
    if any(getattr(m, "data_dependent_flops", False) for m in model.modules()):
        # Routing needs real scores to count tokens per expert: a small real model on the CPU
        # (seeded, so the measurement is reproducible), with random tokens rather than zeros.
        torch.manual_seed(0)
        model, device = build_model(cfg, device="cpu"), "cpu"
    model.eval()
    T = cfg.block_size
    idx = torch.randint(0, cfg.vocab_size, (batch_size, T), generator=torch.Generator().manual_seed(0))
    idx = idx.to(device)
    # The math backend decomposes attention into matmuls that FlopCounterMode sees, with a
    # backward of exactly 2x forward (no recomputation; see the module docstring).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loss, _ = model.loss(idx, idx, chunked=False)  # the plain strategy: the same matmuls, unchunked
        loss.backward()
    return counter.get_total_flops() / (batch_size * T)


# Dense (no sparsity) peak FLOP/s from the vendors' data sheets, by precision of the matmul inputs.
# fp32 is the non-tensor-core rate; fp32 training with TF32 matmuls enabled should use "tf32".
PEAK_FLOPS: dict[str, dict[str, float] | None] = {
    "H100 SXM": {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
    "H100 PCIe": {"bf16": 756.5e12, "fp16": 756.5e12, "tf32": 378.0e12, "fp32": 51.2e12},
    "H200": {"bf16": 989.4e12, "fp16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
    "A100": {"bf16": 312.0e12, "fp16": 312.0e12, "tf32": 156.0e12, "fp32": 19.5e12},
    # GeForce: fp16/bf16 tensor rate with fp32 accumulation (what training uses) is half the fp16-accumulate rate.
    "RTX 4090": {"bf16": 165.2e12, "fp16": 165.2e12, "tf32": 82.6e12, "fp32": 82.6e12},
    "CPU": None,  # no meaningful single peak for a generic CPU; MFU is not reported
}

_PRECISION_ALIASES = {
    "bf16": "bf16",
    "bf16-mixed": "bf16",
    "bf16-true": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "16": "fp16",
    "16-mixed": "fp16",
    "16-true": "fp16",
    "float16": "fp16",
    "tf32": "tf32",
    "fp32": "fp32",
    "32": "fp32",
    "32-true": "fp32",
    "float32": "fp32",
}


def canonical_device(device_name: str) -> str | None:
    """Map a name such as ``torch.cuda.get_device_name()`` ("NVIDIA H100 80GB HBM3") to a PEAK_FLOPS key."""
    name = device_name.lower()
    if name in (k.lower() for k in PEAK_FLOPS):
        return next(k for k in PEAK_FLOPS if k.lower() == name)
    if "h200" in name:
        return "H200"
    if "h100" in name:
        return "H100 PCIe" if "pcie" in name else "H100 SXM"
    if "a100" in name:
        return "A100"
    if "4090" in name:
        return "RTX 4090"
    if name == "cpu" or name.startswith("cpu"):
        return "CPU"
    return None


def peak_flops(device_name: str, precision: str = "bf16") -> float | None:
    """Dense peak FLOP/s of ``device_name`` at ``precision`` (also Lightning names like "bf16-mixed").

    None for a CPU, an unknown device or an unknown precision: MFU is then not reported.
    """
    key = canonical_device(device_name)
    table = PEAK_FLOPS.get(key) if key else None
    prec = _PRECISION_ALIASES.get(str(precision).lower())
    if table is None or prec is None:
        return None
    return table[prec]


def mfu(flop_per_s: float | None, peak_per_device: float | None, devices: int = 1) -> float | None:
    """Model FLOPs utilisation: the model's FLOP/s (analytic count, ``estimate_flops``) over the peak
    of ``devices`` devices (a data sheet, or a CPU's sustained matmul peak: ``lit_algos.peaks``).
    The one formula behind every MFU: training logs and progress, the run record, ``benchmark``.
    None without a peak."""
    if flop_per_s is None or not peak_per_device:
        return None
    return flop_per_s / (peak_per_device * max(1, devices))
