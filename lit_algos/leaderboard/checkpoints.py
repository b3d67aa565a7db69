"""A run's saved weights against its record: the final checkpoint re-evaluated.

Training writes ``checkpoints/last.ckpt`` after its closing evaluation. Evaluating those weights
on the validation set gives back the final loss the record claims, without re-training:
``submit`` does it for every run and reference run it is given (a record whose losses were
lowered by hand, however consistently, no longer matches its own weights), and ``verify
--checkpoint`` does it for one run. The evaluation runs in the precision the run ran in, on the
kind of device it ran on, outside Lightning's loop and uncompiled, so it agrees with the
recorded loss to rounding (``FINAL_LOSS_TOLERANCE``), not bitwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import torch
from torchmetrics import MeanMetric

from lit_algos.config import Config, hash_config_dict
from lit_algos.data import TokenDataModule, prepare_dataset
from lit_algos.errors import LitAlgosError, SubmissionError
from lit_algos.loss import IGNORE_INDEX
from lit_algos.records import RunRecord, default_runs_dir
from lit_algos.training.module import LitGPT

# |re-evaluated - recorded| final loss accepted at submit (nats). Eager vs. compiled and bf16
# autocast rounding stay far below it (docs/measurements/leaderboard-evidence.md); a loss lowered
# by hand by 0.02, as tried in issue 25, is far above it.
FINAL_LOSS_TOLERANCE = 1e-3


def load_checkpoint(path: Path) -> tuple[dict, int, dict]:
    """(resolved config, global step, state dict) of a lit_algos training checkpoint."""

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return state["hyper_parameters"]["config"], int(state["global_step"]), state["state_dict"]
    except FileNotFoundError:
        raise LitAlgosError(f"No checkpoint at {path}.") from None
    except Exception as err:  # not a checkpoint of ours: say so instead of a torch traceback
        raise LitAlgosError(f"{path} is not a lit_algos training checkpoint ({err}).") from None


def validation_loss(
    config: dict,
    weights: dict,
    precision: str = "32-true",
    device: str = "cpu",
    val_fingerprint: str | None = None,
) -> float:
    """The full validation loss of ``weights`` as training computes it: batch means weighted by
    their count of real targets, summed in float64, under the precision the run ran in. With
    ``val_fingerprint``, the validation set prepared here must be that one."""

    cfg = Config.from_dict(config)
    module = LitGPT(config, total_steps=1)
    module.load_state_dict(weights)
    module.to(device).eval()
    t = cfg.train
    prepared = prepare_dataset(cfg.data)
    if val_fingerprint is not None and prepared.val_fingerprint != val_fingerprint:
        raise LitAlgosError(
            f"The validation set prepared here ({prepared.val_fingerprint}) is not the one the run was evaluated "
            f"on ({val_fingerprint}): same corpus, tokenizer and val_tokens are needed to re-evaluate it."
        )
    loader = TokenDataModule(
        prepared, cfg.model.block_size, t.batch_size, t.micro_batch_size, t.seed
    ).val_dataloader()
    metric = MeanMetric(nan_strategy=float("inf")).to(device)  # a NaN loss (divergence) stays visible
    metric.set_dtype(torch.float64)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=precision.startswith("bf16"))
    with torch.no_grad(), autocast:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            _, loss = module(x, y)  # (B, T) in, mean cross-entropy over non-padding targets out
            count = (y != IGNORE_INDEX).sum()
            metric.update(torch.where(count > 0, loss, torch.zeros_like(loss)), weight=count)
    return float(metric.compute())


def eval_device(record: RunRecord) -> str:
    """Where a run's checkpoint is evaluated: on a GPU when it trained on one (a GPU-sized model
    over a GPU track's validation set would take hours on a CPU)."""

    if (record.hardware or {}).get("accelerator") in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise SubmissionError(
                f"Run {record.run_id} trained on {record.hardware.get('device_name')}; re-evaluating its final "
                "checkpoint needs a GPU, and none is visible here. Submit from the machine that ran it."
            )
        return "cuda"
    return "cpu"


def find_run_dir(record: RunRecord, specs: Iterable[str], runs_dir: str | Path | None = None) -> Path | None:
    """The run folder ``record`` was read from: a spec naming its record.json or folder, a folder
    of run folders, or ``<runs dir>/<run id>``."""
    candidates = []
    for spec in specs:
        path = Path(spec)
        candidates += [path.parent] if path.is_file() else [path, path / record.run_id]
    candidates.append(Path(runs_dir) if runs_dir else default_runs_dir())
    candidates[-1] = candidates[-1] / record.run_id
    for folder in candidates:
        try:
            if RunRecord.load(folder / "record.json").run_id == record.run_id:
                return folder
        except LitAlgosError:
            continue
    return None


def final_checkpoint_problem(record: RunRecord, run_dir: Path | None, tolerance: float) -> str | None:
    """Why ``record``'s final loss is not what its final checkpoint gives (None when it is)."""

    ckpt = (run_dir / "checkpoints" / "last.ckpt") if run_dir is not None else None
    if ckpt is None or not ckpt.is_file():
        return (
            f"run {record.run_id} has no final checkpoint"
            + (f" at {ckpt}" if ckpt else " (its run folder was not found)")
            + "; submit the run folders as training left them (record.json beside checkpoints/last.ckpt)"
        )
    config, step, weights = load_checkpoint(ckpt)
    if hash_config_dict(config) != hash_config_dict(record.config) or step != record.final.step:
        return (
            f"run {record.run_id}: {ckpt} holds step {step} of a config hashing to {hash_config_dict(config)}, "
            f"not the record's final step {record.final.step} of {hash_config_dict(record.config)}"
        )
    ran = ((record.hardware or {}).get("precision") or {}).get("ran") or record.config["train"]["precision"]
    loss = validation_loss(config, weights, ran, eval_device(record), record.val_fingerprint)
    recorded = record.final.val_loss
    if not (math.isfinite(loss) and abs(loss - recorded) <= tolerance):
        return (
            f"run {record.run_id}: its final checkpoint evaluates to validation loss {loss:.5f}, the record says "
            f"{recorded:.5f} (difference {abs(loss - recorded):.2g}, at most {tolerance:g} allowed)"
        )
    return None


def check_final_checkpoints(
    records: list[RunRecord], specs: Iterable[str], runs_dir: str | Path | None, what: str = "runs"
) -> None:
    """SubmissionError unless every record's final checkpoint gives back its final loss."""
    specs = list(specs)
    problems = [
        p
        for r in records
        if (p := final_checkpoint_problem(r, find_run_dir(r, specs, runs_dir), FINAL_LOSS_TOLERANCE))
    ]
    if problems:
        raise SubmissionError(
            f"The {what}' final losses were checked against their saved weights and do not hold: "
            f"{'; '.join(problems)}. A record must be submitted exactly as training wrote it, beside its checkpoint."
        )
