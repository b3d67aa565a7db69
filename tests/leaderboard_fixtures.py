"""Real (seconds-long) runs for the board's end-to-end tests: the debug recipe run in full to a
declared length, a track calibrated to its validation set, and consistent forgeries of records."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from types import SimpleNamespace

from lit_algos.records import RunRecord, interpolate_to_target

TARGET = 8.0  # the debug recipe's first evaluation (~6.5) is already below it: every run crosses
DEBUG = ["train.max_tokens=8192", "train.eval_every_tokens=2048", f"train.target_loss={TARGET}",
         "train.stop_at_target=false"]  # fmt: skip


def fake_clock(monkeypatch, tick: float = 0.25) -> None:
    """The training clock advances ``tick`` seconds per reading: a run and its re-run take exactly
    the same seconds, so a time judgement is tested without depending on this machine's load."""
    import lit_algos.training.callbacks as callbacks

    counter = itertools.count()
    monkeypatch.setattr(callbacks, "time", SimpleNamespace(perf_counter=lambda: next(counter) * tick))


def train_debug(runs_dir: Path, seed: int) -> RunRecord:
    from lit_algos.config.recipes import load_config
    from lit_algos.training.run import train

    return train(load_config("debug", [*DEBUG, f"train.seed={seed}"]), runs_dir=runs_dir, progress=False)


def tracks_yaml(record: RunRecord, min_seeds: int = 3) -> str:
    """A calibrated track ``toy`` for runs of the debug recipe on this machine."""
    return f"""\
tracks:
  toy:
    description: The debug recipe, for end-to-end tests.
    corpus: kjv
    tokenizer: bpe:512
    val_tokens: {record.data["val_tokens"]}
    val_fingerprint: {record.val_fingerprint}
    target_loss: {TARGET}
    hardware_class: {record.hardware["class"]}
    min_seeds_for_significance: {min_seeds}
    alpha: 0.01
    baseline_recipe: debug
    rules: [Tests only.]
"""


def forged(record: RunRecord, change) -> RunRecord:
    """``record`` round-tripped through JSON with ``change(dict)`` applied, as a hand edit would be."""
    data = json.loads(json.dumps(record.to_dict()))
    change(data)
    return RunRecord.from_dict(data)


def seconds_times(factor: float):
    """Every seconds figure of a record x ``factor``, and its tokens/s and MFU to match."""

    def change(d):
        for p in d["curve"]:
            p["train_seconds"] *= factor
        d["final"] = d["curve"][-1]
        if d.get("to_target"):
            d["to_target"]["train_seconds"] *= factor
        d["tokens_per_second"] /= factor
        if d.get("mfu"):
            d["mfu"] /= factor

    return change


def losses_lowered(by: float):
    """Every loss lowered by ``by`` nats, with the bits per byte and the target crossing re-derived."""

    def change(d):
        for p in d["curve"]:
            ratio = p["val_bpb"] / p["val_loss"]
            p["val_loss"] -= by
            p["val_bpb"] = p["val_loss"] * ratio
        d["train_curve"] = [[s, v - by] for s, v in d["train_curve"]]
        d["final"] = d["curve"][-1]
        record = RunRecord.from_dict(json.loads(json.dumps(d)))
        hit = interpolate_to_target(record.curve, record.target_loss)
        d["to_target"] = hit.__dict__ if hit else None

    return change


def relabelled(record: RunRecord, seed: int) -> RunRecord:
    from lit_algos.config import hash_config_dict

    def change(d):
        d["seed"] = d["config"]["train"]["seed"] = seed
        d["config_hash"] = hash_config_dict(d["config"])
        d["run_id"] = f"{d['run_id']}-as-s{seed}"

    return forged(record, change)
