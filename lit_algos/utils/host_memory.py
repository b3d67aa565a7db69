"""Keep freed host memory in the process during training, instead of handing it back every step.

glibc's ``malloc`` serves large blocks with ``mmap`` and returns them to the OS on ``free`` (and
trims the heap's top above 128 KiB). A CPU training step frees and re-allocates the same large
activation and gradient buffers every step, so each step faults its pages in again: on the 2-core
bf16 speedrun step, 2,000-5,900 minor page faults and 6-16 ms of system time a step, where the
buffers were kept nothing faulted (docs/measurements/benchmarks.md). ``keep_freed_memory`` raises
the mmap and trim thresholds with ``mallopt`` for the duration of a run, so freed buffers stay in
the heap and the next step reuses them; the peak resident memory is the same, it is just not
released between steps. Nothing numerical changes (PyTorch aligns its CPU buffers itself).

Only glibc has ``mallopt``; elsewhere (macOS, musl, Windows) this is a no-op. On leaving, glibc's
documented defaults (128 KiB each) are set again; glibc's own adaptive threshold does not come
back once set, so a later run in the same process starts from those static defaults.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
from collections.abc import Iterator

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

KEEP = {M_MMAP_THRESHOLD: 1 << 30, M_TRIM_THRESHOLD: 1 << 30, M_TOP_PAD: 64 << 20}
GLIBC_DEFAULTS = {M_MMAP_THRESHOLD: 128 << 10, M_TRIM_THRESHOLD: 128 << 10, M_TOP_PAD: 128 << 10}


@functools.cache
def _mallopt():
    """glibc's ``mallopt``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc (macOS's libSystem, musl): no mallopt
        return None
    fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return fn


def set_malloc_options(options: dict[int, int]) -> bool:
    """Apply ``mallopt`` settings; False where there is no glibc or glibc refused one."""
    fn = _mallopt()
    if fn is None:
        return False
    return all(fn(param, value) == 1 for param, value in options.items())


@contextlib.contextmanager
def keep_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """Within the block, freed host buffers stay in the process (glibc); yields whether that applies."""
    applied = enabled and set_malloc_options(KEEP)
    try:
        yield applied
    finally:
        if applied:
            set_malloc_options(GLIBC_DEFAULTS)
