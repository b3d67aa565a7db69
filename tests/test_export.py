"""Export round trips: Hugging Face Llama / GPT-2 logits match lit_algos's, tokenizers load in HF and tiktoken."""

from __future__ import annotations

import json

import pytest
import torch

from lit_algos.data.tokenizers import train_bpe
from lit_algos.errors import LitAlgosError
from lit_algos.export import export_run, hf_architecture
from lit_algos.inference import LoadedRun
from lit_algos.model import build_model
from lit_algos.records import RunRecord

from .model_configs import tiny_config

TEXT = (
    "In the beginning God created the heaven and the earth. And the earth was without form, and void. " * 20
)

LLAMA = dict(position="rope", norm="rmsnorm", mlp="swiglu", bias=False, tie=False)
GPT2 = dict(position="learned", norm="layernorm", mlp="gelu", bias=True, tie=True)


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe([TEXT], vocab_size=300)


def loaded(cfg, tokenizer) -> LoadedRun:
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():  # every weight distinct, so a swapped or transposed tensor shows
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    record = RunRecord(run_id="r", recipe="t", config={"model": {}}, config_hash="h", seed=0)
    return LoadedRun(record, model.eval(), tokenizer, path=None)


@pytest.mark.parametrize(
    "combo, arch",
    [
        ({**LLAMA, "attention": "gqa"}, "LlamaForCausalLM"),
        ({**LLAMA, "attention": "mha", "tie": True, "bias": True}, "LlamaForCausalLM"),
        (GPT2, "GPT2LMHeadModel"),
        ({**GPT2, "bias": False, "tie": False}, "GPT2LMHeadModel"),
        ({**LLAMA, "attention": "gqa", "qk_norm": True}, "Qwen3ForCausalLM"),  # modern's stack
        ({**LLAMA, "attention": "mqa", "qk_norm": True, "tie": True}, "Qwen3ForCausalLM"),
    ],
)
def test_hf_export_gives_the_same_logits(tmp_path, tokenizer, combo, arch):
    transformers = pytest.importorskip("transformers")
    cfg = tiny_config(**{**combo, "vocab_size": 320})
    run = loaded(cfg, tokenizer)
    export_run(run, tmp_path / "hf", "hf")
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    assert type(hf).__name__ == arch
    idx = torch.randint(0, 300, (2, cfg.block_size))
    with torch.no_grad():
        ours, _ = run.model(idx)  # (2, T, V)
        theirs = hf(idx).logits
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "combo, reason",
    [
        (
            {**LLAMA, "position": "alibi"},
            "Nearest: LlamaForCausalLM, which differs in: position.kind='alibi'",
        ),
        ({**LLAMA, "qk_norm": True, "bias": True}, "Nearest: Qwen3ForCausalLM, which differs in: bias=true"),
        (
            {**LLAMA, "norm": "layernorm"},
            "Nearest: LlamaForCausalLM, which differs in: norm.kind='layernorm'",
        ),
        ({**GPT2, "placement": "post"}, "Nearest: GPT2LMHeadModel, which differs in: norm.placement='post'"),
    ],
)
def test_other_combinations_are_refused_naming_the_nearest_architecture(tmp_path, tokenizer, combo, reason):
    cfg = tiny_config(**combo)
    with pytest.raises(LitAlgosError, match="cannot be exported") as err:
        hf_architecture(cfg)
    assert reason in str(err.value)
    if combo.get("position") == "alibi":  # transformers has ALiBi, in architectures lit_algos does not write
        assert "ALiBi: Bloom, MPT" in str(err.value)
    with pytest.raises(LitAlgosError):
        export_run(loaded(cfg, tokenizer), tmp_path / "out", "hf")
    assert not (tmp_path / "out").exists()  # refused before anything is written


def test_safetensors_export_rebuilds_the_model(tmp_path, tokenizer):
    from safetensors.torch import load_file

    cfg = tiny_config(**LLAMA, attention="gqa", vocab_size=320)
    run = loaded(cfg, tokenizer)
    export_run(run, tmp_path / "st", "safetensors")
    rebuilt = build_model(cfg)
    rebuilt.load_state_dict(load_file(tmp_path / "st" / "model.safetensors"))
    idx = torch.randint(0, 300, (1, cfg.block_size))
    torch.testing.assert_close(rebuilt.eval()(idx)[0], run.model(idx)[0])
    assert json.loads((tmp_path / "st" / "lit_algos_config.json").read_text())["run_id"] == "r"


def test_exported_tokenizer_loads_in_tiktoken_and_hf(tmp_path, tokenizer):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    cfg = tiny_config(**GPT2, vocab_size=320)
    export_run(loaded(cfg, tokenizer), tmp_path / "tok", "safetensors")
    meta = json.loads((tmp_path / "tok" / "tiktoken.json").read_text())
    enc = tiktoken.Encoding(
        meta["name"] + "-reloaded",
        pat_str=meta["pat_str"],
        mergeable_ranks=load_tiktoken_bpe(str(tmp_path / "tok" / meta["mergeable_ranks"])),
        special_tokens=meta["special_tokens"],
    )
    sample = "And God said, Let there be light: and there was light. 123 Ünïcode!"
    assert enc.encode_ordinary(sample) == tokenizer.encode(sample)
    transformers = pytest.importorskip("transformers")
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tok" / "tokenizer.json"))
    assert hf.encode(sample) == tokenizer.encode(sample)
    assert hf.decode(hf.encode(sample)) == sample


def test_greedy_generation_of_the_exported_modern_model_equals_lit_algos_sample(tmp_path, tokenizer):
    """Qwen3 from `export --format hf` continues a prompt exactly as `lit-algos sample --temperature 0`."""
    transformers = pytest.importorskip("transformers")
    from lit_algos.inference import generate, sample

    cfg = tiny_config(**{**LLAMA, "attention": "gqa", "qk_norm": True, "vocab_size": 320})
    run = loaded(cfg, tokenizer)
    export_run(run, tmp_path / "hf", "hf")
    prompt, n = "And the earth", 12
    ours = sample(run, prompt, tokens=n, temperature=0)
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    ids = tok(prompt, return_tensors="pt").input_ids
    assert ids[0].tolist() == tokenizer.encode(prompt)
    out = hf.generate(ids, max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert out.shape[1] == ids.shape[1] + n
    assert out.tolist() == generate(run.model, ids, n, temperature=0).tolist()  # the same token ids
    new = [i for i in out[0, ids.shape[1] :].tolist() if i < tokenizer.n_vocab]  # as sample() decodes
    assert prompt + tokenizer.decode(new) == ours


def test_the_readme_export_example_runs_as_written(data_cache, tmp_path, monkeypatch):
    """The README's `lit-algos export ... --format hf` line and its Python loading snippet, on a trained
    modern-shaped run (tiny), with only the run directory filled in."""
    import re
    from pathlib import Path

    pytest.importorskip("transformers")
    from lit_algos.cli import main
    from lit_algos.config.recipes import load_config
    from lit_algos.training.run import train

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## After training: sample and export") :]
    command = re.search(
        r"^lit-algos export runs/modern-s0-\.\.\. --format hf .*?(?=\s+#|$)", section, re.M
    ).group(0)
    snippet = re.search(r"```python\n(from transformers.*?)```", section, re.S).group(1)
    small = ["model.n_layer=1", "model.n_embd=32", "model.n_head=2", "model.attention.n_kv_head=1"]
    budget = [
        "train.max_tokens=8192",
        "train.eval_every_tokens=8192",
        "train.batch_size=8",
        "model.block_size=32",
    ]
    data = ["data.tokenizer=bpe:512", "model.vocab_size=512", "data.val_tokens=4096"]
    record = train(load_config("modern", small + budget + data), runs_dir=tmp_path / "runs", progress=False)
    monkeypatch.chdir(tmp_path)
    argv = command.replace("runs/modern-s0-...", f"runs/{record.run_id}").split()[1:]
    assert main(argv) == 0
    assert json.loads((tmp_path / "export/modern/config.json").read_text())["model_type"] == "qwen3"
    printed = []
    exec(snippet, {"print": lambda *a: printed.append(a)})
    assert printed and printed[0][0].startswith("And God said")
