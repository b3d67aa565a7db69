"""The host fingerprint and the one same-machine judgement (``same_host``)."""

from __future__ import annotations

import copy

from lit_algos.analysis.synthetic import SYNTHETIC_HOST
from lit_algos.hardware import (
    cpu_flags,
    cpu_identity,
    host_details,
    host_fingerprint,
    host_string,
    same_host,
)
from lit_algos.peaks import fingerprint_peaks

ZEN4 = {
    "vendor_id": "AuthenticAMD",
    "cpu family": "25",
    "model": "17",
    "model name": "AMD EPYC",
    "stepping": "1",
    "cpu MHz": "2596.150",
    "flags": "fpu sse avx2 avx512f avx512_bf16",
}


def _host(bf16=3.3e11, fp32=1.6e11, **changes) -> dict:
    host = copy.deepcopy(SYNTHETIC_HOST)
    host["cpu_id"] = {"vendor": "AuthenticAMD", "family": "25", "model": "17", "stepping": "1"}
    host["peaks"] = {"bf16": {"flops": bf16, "min": bf16, "max": bf16, "n": 15}, "fp32": {"flops": fp32}}
    host.update(changes)
    return host


def test_cpu_identity_from_x86_and_arm_cpuinfo():
    assert cpu_identity(ZEN4) == {"vendor": "AuthenticAMD", "family": "25", "model": "17", "stepping": "1"}
    arm = {"CPU implementer": "0x41", "CPU architecture": "8", "CPU part": "0xd0c", "CPU revision": "1"}
    assert cpu_identity(arm) == {"vendor": "0x41", "family": "8", "model": "0xd0c", "stepping": "1"}
    assert cpu_identity({}) == dict.fromkeys(("vendor", "family", "model", "stepping"))
    assert cpu_flags(ZEN4) == ["avx512_bf16", "avx512f", "avx2"]


def test_the_fingerprint_records_identity_clock_and_measured_peaks(tmp_path, monkeypatch):
    monkeypatch.setenv("LIT_ALGOS_CACHE", str(tmp_path))
    host = host_fingerprint("cpu", 1, peaks=fingerprint_peaks("cpu"))  # measured here: none cached
    assert {"cpu_model", "cpu_id", "clock_mhz", "isa", "cores", "torch_threads", "torch", "peaks"} <= set(
        host
    )
    assert set(host["peaks"]) == {"fp32", "bf16"} and all(p["flops"] > 0 for p in host["peaks"].values())
    # measured once, then cached: the same machine
    assert same_host(host, host_fingerprint("cpu", 1, peaks=fingerprint_peaks("cpu", cached=True)))
    assert "peaks" not in host_fingerprint("cpu", 1)
    assert "GFLOP/s" in host_string(host) and "GFLOP/s" in host_details(host)


def test_peaks_more_than_20_percent_apart_are_two_machines():
    host = _host()
    assert same_host(host, _host(bf16=3.3e11 * 1.19)) and same_host(host, _host(fp32=1.6e11 / 1.19))
    assert not same_host(host, _host(bf16=3.3e11 * 1.21))  # the same CPU by every other field
    assert not same_host(host, _host(fp32=1.6e11 / 1.25))
    assert not same_host(host, _host(cpu_id={**host["cpu_id"], "model": "1"}))  # another model number
    assert not same_host(host, _host(isa=["avx512f", "avx2"])) and not same_host(host, None)


def test_fingerprints_without_peaks_compare_as_before_and_never_with_measured_ones():
    old = copy.deepcopy(SYNTHETIC_HOST)
    assert same_host(old, copy.deepcopy(old))  # the board's existing entries keep their references
    assert not same_host(old, _host()) and not same_host(_host(), old)
    assert "peaks not measured" in host_details(old) and "GFLOP/s" not in host_string(old)


def test_host_strings_name_peaks_on_cpu_and_only_the_accelerator_on_gpu():
    assert host_string(_host()) == "2-core Synthetic CPU [avx2] 2 threads; bf16 330, fp32 160 GFLOP/s"
    assert "family 25" in host_details(_host())
    gpu = _host(accelerator_name="NVIDIA H100 80GB HBM3", accelerator_count=8)
    assert host_string(gpu) == "8x NVIDIA H100 80GB HBM3"  # exact-hardware tracks compare this string
