"""Leaderboard tracks: ``<leaderboard dir>/tracks.yaml``.

A track fixes what "reaching the target" means: corpus, tokenizer, the validation set (by its
fingerprint), the target loss, the hardware class and the statistical rules. A track whose
``val_fingerprint`` (or ``target_loss``) is null is *not calibrated yet*: it is listed on the
board but refuses submissions.

The leaderboard directory is ``--leaderboard-dir``, else ``$LIT_ALGOS_LEADERBOARD``, else
``./leaderboard`` when it holds a tracks.yaml, else the project's ``leaderboard/`` folder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from lit_algos.errors import ConfigError, LitAlgosError


@dataclass
class Track:
    name: str
    description: str
    corpus: str
    tokenizer: str
    val_tokens: int
    val_fingerprint: str | None  # null: not calibrated yet, submissions refused
    target_loss: float | None  # null: not calibrated yet
    hardware_class: str
    min_seeds_for_significance: int = 5
    alpha: float = 0.01
    baseline: str | None = None  # an entry id; null: the earliest entry
    enforce_hardware: bool = True  # runs must report hardware.class == hardware_class
    # seconds are compared raw only between runs on exactly this hardware string (GPU tracks,
    # lit_algos.hardware.host_string); null: each entry carries a same-machine reference instead
    exact_hardware: str | None = None
    baseline_recipe: str | None = None  # the recipe a same-machine reference measures
    rules: list[str] = field(default_factory=list)

    @property
    def calibrated(self) -> bool:
        return self.val_fingerprint is not None and self.target_loss is not None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


REQUIRED = (
    "description",
    "corpus",
    "tokenizer",
    "val_tokens",
    "val_fingerprint",
    "target_loss",
    "hardware_class",
)


def default_leaderboard_dir() -> Path:
    if os.environ.get("LIT_ALGOS_LEADERBOARD"):
        return Path(os.environ["LIT_ALGOS_LEADERBOARD"])
    local = Path.cwd() / "leaderboard"
    if (local / "tracks.yaml").is_file():
        return local
    return Path(__file__).resolve().parents[2] / "leaderboard"


# field -> (allowed Python types, how to say it); None in the types means null is allowed
TYPES = {
    "description": ((str,), "a string"),
    "corpus": ((str,), "a string"),
    "tokenizer": ((str,), "a string"),
    "val_tokens": ((int,), "a positive integer"),
    "val_fingerprint": ((str, None), "a string, or null while not calibrated"),
    "target_loss": ((float, int, None), "a finite number > 0, or null while not calibrated"),
    "hardware_class": ((str,), "a string"),
    "min_seeds_for_significance": ((int,), "an integer >= 2"),
    "alpha": ((float, int), "a significance level between 0 and 1, e.g. 0.01"),
    "baseline": ((str, None), "an entry id, or null for the earliest entry"),
    "enforce_hardware": ((bool,), "true or false"),
    "rules": ((list,), "a list of rule sentences"),
    "exact_hardware": ((str, None), "a hardware string, or null"),
    "baseline_recipe": ((str, None), "a recipe name, or null"),
}


def _check_type(field: str, value, spec: tuple, source: str) -> None:
    types, allowed = spec
    if value is None and None in types:
        return
    ok = isinstance(value, tuple(t for t in types if t is not None))
    if isinstance(value, bool) and bool not in types:
        ok = False  # YAML true is not 1
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if ok and field.endswith(".target_loss") and value <= 0:
        ok = False
    if not ok:
        raise ConfigError(field, value, f"Allowed: {allowed}.", source=source)


def _track_from_dict(name: str, data: dict, source: str) -> Track:
    if not isinstance(data, dict):
        raise ConfigError(name, data, "A track is a mapping of its fields.", source=source)
    known = {f.name for f in fields(Track)} - {"name"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{name}.{unknown[0]}",
            data[unknown[0]],
            f"Known track fields: {', '.join(sorted(known))}.",
            source=source,
        )
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ConfigError(
            f"{name}.{missing[0]}",
            None,
            f"Every track must set: {', '.join(REQUIRED)} (null marks 'not calibrated').",
            source=source,
        )
    for key, value in data.items():
        if key in TYPES:  # fields added later without an entry here keep the dataclass's own checks
            _check_type(f"{name}.{key}", value, TYPES[key], source)
    track = Track(name=name, **data)
    if not isinstance(track.val_tokens, int) or track.val_tokens <= 0:
        raise ConfigError(f"{name}.val_tokens", track.val_tokens, "A positive integer.", source=source)
    if track.target_loss is not None and not isinstance(track.target_loss, (int, float)):
        raise ConfigError(
            f"{name}.target_loss", track.target_loss, "A number, or null while not calibrated.", source=source
        )
    if track.val_fingerprint is not None and not isinstance(track.val_fingerprint, str):
        raise ConfigError(
            f"{name}.val_fingerprint",
            track.val_fingerprint,
            "A string, or null while not calibrated.",
            source=source,
        )
    if not 0 < track.alpha < 1:
        raise ConfigError(
            f"{name}.alpha", track.alpha, "A significance level between 0 and 1, e.g. 0.01.", source=source
        )
    if not isinstance(track.min_seeds_for_significance, int) or track.min_seeds_for_significance < 2:
        raise ConfigError(
            f"{name}.min_seeds_for_significance",
            track.min_seeds_for_significance,
            "An integer >= 2 (a t-test needs two seeds).",
            source=source,
        )
    if not isinstance(track.rules, list) or not all(isinstance(r, str) for r in track.rules):
        raise ConfigError(f"{name}.rules", track.rules, "A list of rule sentences.", source=source)
    if track.target_loss is not None:
        track.target_loss = float(track.target_loss)
    return track


def load_tracks(leaderboard_dir: str | Path | None = None) -> dict[str, Track]:
    root = Path(leaderboard_dir) if leaderboard_dir else default_leaderboard_dir()
    path = root / "tracks.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise LitAlgosError(f"{path} is not UTF-8 text; save it as UTF-8 YAML.") from None
    except (FileNotFoundError, NotADirectoryError):
        raise LitAlgosError(
            f"No tracks file at {path}. Pass --leaderboard-dir pointing to a folder with tracks.yaml."
        ) from None
    except yaml.YAMLError as err:
        raise LitAlgosError(f"{path} is not valid YAML: {err}".replace("\n", " ")) from None
    except RecursionError:
        raise LitAlgosError(
            f"{path} nests its mappings or lists too deeply (thousands of levels); fix the file."
        ) from None
    except OSError as err:
        raise LitAlgosError(f"{path} cannot be read: {err.strerror or err}.") from None
    tracks = data.get("tracks") if isinstance(data, dict) else None
    if not isinstance(tracks, dict) or not tracks:
        raise LitAlgosError(f"{path} must hold a 'tracks:' mapping of track name to fields.")
    return {name: _track_from_dict(str(name), fields_, str(path)) for name, fields_ in tracks.items()}


def get_track(
    name: str, leaderboard_dir: str | Path | None = None, error: type[LitAlgosError] = LitAlgosError
) -> Track:
    tracks = load_tracks(leaderboard_dir)
    if name not in tracks:
        raise error(f"Unknown track {name!r}. Tracks in tracks.yaml: {', '.join(tracks)}.")
    return tracks[name]
