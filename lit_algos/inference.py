"""Use a trained run: load its model and tokenizer, generate text.

    from lit_algos.inference import load_run, sample
    run = load_run("runs/modern-s0-...")               # record, GPT (eval mode), tokenizer
    print(sample(run, "In the beginning", tokens=50, temperature=0.8, top_k=40, seed=0))

The record says where the run's dataset (and so its trained tokenizer) is: ``data.root``. A
run whose dataset was prepared elsewhere (another machine) finds its tokenizer again from the
config (the tokenizer cache, or gpt2's files), and the fingerprint in the record must match.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from lit_algos.config import Config
from lit_algos.data.tokenizers import load_tokenizer, load_tokenizer_file
from lit_algos.errors import LitAlgosError
from lit_algos.model import build_model
from lit_algos.records import RunRecord, default_runs_dir


@dataclass
class LoadedRun:
    record: RunRecord
    model: torch.nn.Module  # lit_algos.model.GPT, eval mode, on CPU
    tokenizer: object  # lit_algos.data.tokenizers.Tokenizer
    path: Path  # the run directory

    @property
    def config(self):
        return Config.from_dict(self.record.config)


def run_dir(run: str | Path, runs_dir: Path | None = None) -> Path:
    """A run directory from a run id (looked up in ``runs_dir``), a run directory or its record.json."""
    path = Path(run)
    if path.is_file() and path.name == "record.json":
        return path.parent
    if path.is_dir():
        return path
    candidate = Path(runs_dir if runs_dir is not None else default_runs_dir()) / str(run)
    if candidate.is_dir():
        return candidate
    raise LitAlgosError(
        f"Run {run!r} not found: it is not a run directory, and there is no {candidate}. "
        "Pass the run directory, or --runs-dir where its id is."
    )


def load_model_weights(path: Path, record: RunRecord):
    """The GPT of a run with the weights of its last checkpoint."""

    ckpt = path / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise LitAlgosError(
            f"Run {record.run_id} has no checkpoint at {ckpt}: it stopped before its first evaluation."
        )
    cfg = Config.from_dict(record.config)
    model = build_model(cfg.model)
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    # LitGPT holds the GPT as `model`; the rest of its state dict (metrics) is not the model's.
    weights = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
    model.load_state_dict(weights)
    return model.eval()


def load_run_tokenizer(record: RunRecord):
    root = record.data.get("root")
    if root and (Path(root) / "tokenizer.json").is_file():
        tok = load_tokenizer_file(Path(root) / "tokenizer.json")
    else:
        cfg = Config.from_dict(record.config)
        tok = load_tokenizer(cfg.data.tokenizer, corpus=cfg.data)
    want = record.data.get("tokenizer_fingerprint")
    if want and tok.fingerprint != want:
        raise LitAlgosError(
            f"The tokenizer found for run {record.run_id} has fingerprint {tok.fingerprint}, but the run was trained "
            f"with {want}. Prepare the run's data again (lit-algos data prepare) on this machine."
        )
    return tok


def load_run(run: str | Path, runs_dir: Path | None = None) -> LoadedRun:
    path = run_dir(run, runs_dir)
    record = RunRecord.load(path / "record.json")
    return LoadedRun(record, load_model_weights(path, record), load_run_tokenizer(record), path)


@torch.no_grad()
def generate(
    model,
    idx: torch.Tensor,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Append ``max_new_tokens`` sampled tokens to ``idx`` (B, T); temperature 0 is greedy."""
    block_size = model.cfg.block_size
    for _ in range(max_new_tokens):
        context = idx[:, -block_size:]  # (B, <=block_size): the model sees at most its block
        logits, _ = model(context)
        logits = logits[:, -1, :].float()  # (B, V): the next-token distribution
        if temperature == 0:
            nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
        else:
            logits = logits / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]  # (B, 1)
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = torch.softmax(logits, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        idx = torch.cat((idx, nxt), dim=1)
    return idx


def sample(
    run: LoadedRun,
    prompt: str = "",
    *,
    tokens: int = 100,
    temperature: float = 0.8,
    top_k: int | None = 50,
    seed: int = 0,
) -> str:
    """Text generated after ``prompt`` (the prompt included); the same seed gives the same text."""
    if tokens < 0:
        raise LitAlgosError(f"--tokens {tokens}: the number of tokens to generate must be >= 0.")
    if temperature < 0:
        raise LitAlgosError(
            f"--temperature {temperature}: allowed is a number >= 0 (0 = always the likeliest token)."
        )
    if top_k is not None and top_k < 1:
        raise LitAlgosError(f"--top-k {top_k}: allowed is an integer >= 1.")
    tok = run.tokenizer
    ids = tok.encode(prompt) if prompt else [tok.eot_token]
    vocab = run.model.cfg.vocab_size
    if any(i >= vocab for i in ids):
        raise LitAlgosError(f"The prompt has token ids beyond the model's vocabulary ({vocab}).")
    generator = torch.Generator().manual_seed(seed)
    out = generate(
        run.model,
        torch.tensor([ids], dtype=torch.long),
        tokens,
        temperature=temperature,
        top_k=top_k,
        generator=generator,
    )
    new = [i for i in out[0, len(ids) :].tolist() if i < tok.n_vocab]
    return prompt + tok.decode(new)
