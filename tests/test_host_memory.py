"""keep_freed_memory: freed host buffers stay in the process while a run trains (glibc only)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lit_algos.config.recipes import load_config
from lit_algos.utils import host_memory
from lit_algos.utils.host_memory import GLIBC_DEFAULTS, keep_freed_memory, set_malloc_options

# Allocates, fills and frees a few buffers of 1-16 MiB, the sizes of a small CPU step's activations
# and gradients, ten times over in a fresh process; prints the minor page faults of each time.
WORKLOAD = """
import resource, sys, torch
from lit_algos.utils.host_memory import GLIBC_DEFAULTS, keep_freed_memory, set_malloc_options
def one_step():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    buffers = [torch.ones(n) for n in (4 << 20, 1 << 20, 3 << 20, 1 << 19)]
    del buffers
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
one_step()
if sys.argv[1] == "keep":
    with keep_freed_memory() as applied:
        assert applied
        print(*[one_step() for _ in range(10)])
else:
    assert set_malloc_options(GLIBC_DEFAULTS)  # glibc's static defaults: every buffer is an mmap
    print(*[one_step() for _ in range(10)])
"""
PAGES = (4 + 1 + 3 + 0.5) * (1 << 20) * 4 // 4096  # pages the buffers of one step touch


def faults_per_step(mode: str) -> list[int]:
    out = subprocess.run([sys.executable, "-c", WORKLOAD, mode], capture_output=True, text=True, check=True)
    return [int(n) for n in out.stdout.split()]


needs_glibc = pytest.mark.skipif(host_memory._mallopt() is None, reason="mallopt is glibc's")


@needs_glibc
def test_inside_the_block_freed_buffers_are_reused_without_faulting_their_pages_again():
    released, kept = faults_per_step("release"), faults_per_step("keep")
    assert min(released) > PAGES / 2  # every step faults its buffers' pages in again
    assert sum(kept[-5:]) < PAGES / 10  # after a step or three, the same pages are reused
    assert sum(kept) < sum(released) / 2


def test_disabled_it_changes_nothing(monkeypatch):
    monkeypatch.setattr(host_memory, "set_malloc_options", lambda options: pytest.fail("mallopt called"))
    with keep_freed_memory(False) as applied:
        assert applied is False


def test_without_glibc_it_is_a_no_op(monkeypatch):
    monkeypatch.setattr(host_memory, "_mallopt", lambda: None)
    assert set_malloc_options(GLIBC_DEFAULTS) is False
    with keep_freed_memory() as applied:
        assert applied is False


def test_the_option_is_a_systems_field_left_out_of_the_config_hash():
    on, off = (load_config("debug", [f"train.keep_freed_memory={v}"]) for v in ("true", "false"))
    assert on.train.keep_freed_memory and not off.train.keep_freed_memory
    assert on.config_hash() == off.config_hash() == load_config("debug", []).config_hash()
