"""Sampling from a trained run, and the sample / export commands on a real (debug) run."""

from __future__ import annotations

import pytest
import torch

from lit_algos.cli import main
from lit_algos.config.recipes import load_config
from lit_algos.inference import generate, load_run, sample
from lit_algos.training.run import train


@pytest.fixture(scope="module")
def debug_run(data_cache, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    record = train(load_config("debug", ["train.max_tokens=4096"]), runs_dir=runs, progress=False)
    return runs / record.run_id


def test_the_record_says_where_the_tokenizer_is(debug_run):
    run = load_run(debug_run)
    assert run.record.data["root"] and run.tokenizer.fingerprint == run.record.data["tokenizer_fingerprint"]


def test_sampling_is_reproducible_with_a_seed(debug_run, capsys):
    args = ["sample", str(debug_run), "--prompt", "And God said", "--tokens", "20"]
    assert main([*args, "--seed", "3"]) == 0
    first = capsys.readouterr().out
    assert main([*args, "--seed", "3"]) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("And God said") and len(first) > len("And God said")
    run = load_run(debug_run)
    texts = {sample(run, "And", tokens=20, seed=s, temperature=1.0) for s in range(4)}
    assert len(texts) > 1  # the seed matters


def test_temperature_zero_is_greedy(debug_run):
    run = load_run(debug_run)
    idx = torch.tensor([run.tokenizer.encode("And God")])
    out = generate(run.model, idx, 5, temperature=0)
    for t in range(idx.size(1), out.size(1)):
        logits, _ = run.model(out[:, :t])
        assert int(logits[0, -1].argmax()) == int(out[0, t])


def test_bad_sampling_arguments_exit_2(debug_run, capsys):
    assert main(["sample", str(debug_run), "--temperature", "-1"]) == 2
    assert "--temperature" in capsys.readouterr().err
    assert main(["sample", "no-such-run"]) == 2


def test_export_command_writes_a_loadable_hf_model(debug_run, tmp_path):
    transformers = pytest.importorskip("transformers")
    assert main(["export", str(debug_run), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    run = load_run(debug_run)
    idx = torch.tensor([run.tokenizer.encode("In the beginning God created")])
    with torch.no_grad():
        torch.testing.assert_close(hf(idx).logits, run.model(idx)[0], atol=1e-4, rtol=1e-4)
