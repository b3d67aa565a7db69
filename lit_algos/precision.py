"""Precision that fits the host: reduced precision only where the device runs it natively.

bf16 autocast on a CPU without AVX-512-BF16 or AMX is emulated: on a 2-core AVX2 EPYC a bf16
matmul runs at ~1 GFLOP/s against ~120 GFLOP/s in fp32, and a bf16-mixed step is ~10x slower.
A recipe that asks for a reduced precision the device cannot run natively therefore runs in
``32-true`` with a warning; the run record keeps both (``record.hardware["precision"]``:
``{"requested": ..., "ran": ..., "reason": ...}``) and MFU is computed against the precision that ran.

    ran, reason = resolve_precision("bf16-mixed", "cpu")   # ("32-true", "...no native bf16...") on AVX2
"""

from __future__ import annotations

import os

import torch

from lit_algos.hardware import cpu_flags

# CPU instruction-set flags with native bf16 matmuls (oneDNN uses them for bf16 GEMMs).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# LIT_ALGOS_PRECISION=asked runs the recipe's precision even where it is emulated (to measure it).
OVERRIDE_ENV = "LIT_ALGOS_PRECISION"


def native_bf16(accelerator: str = "cpu", flags: list[str] | None = None) -> bool:
    """Whether the device runs bf16 matmuls natively (CUDA: ``torch.cuda.is_bf16_supported()``)."""
    if accelerator in ("gpu", "cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def resolve_precision(
    requested: str, accelerator: str = "cpu", flags: list[str] | None = None
) -> tuple[str, str | None]:
    """The precision to run and, when it differs from ``requested``, why (the warning's text)."""
    if os.environ.get(OVERRIDE_ENV) == "asked":
        return requested, None
    gpu = accelerator in ("gpu", "cuda")
    if requested.startswith("bf16") and not native_bf16(accelerator, flags):
        where = (
            "this GPU"
            if gpu
            else f"this CPU (flags: {', '.join(cpu_flags() if flags is None else flags) or 'none'})"
        )
        return "32-true", (
            f"train.precision={requested!r} asks for bf16, but {where} has no native bf16 "
            f"({'torch.cuda.is_bf16_supported() is False' if gpu else 'needs avx512_bf16 or amx_bf16'}): "
            f"emulated bf16 is several times slower than fp32, so this run uses '32-true'. "
            f"Set {OVERRIDE_ENV}=asked to run {requested!r} anyway."
        )
    if requested.startswith("16") and not gpu:
        return "32-true", (
            f"train.precision={requested!r} (fp16) has no native CPU kernels: this run uses '32-true'. "
            f"Set {OVERRIDE_ENV}=asked to run it anyway."
        )
    return requested, None
