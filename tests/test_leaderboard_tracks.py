"""Track definitions (lit_algos.leaderboard.tracks) and the project's leaderboard/tracks.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from lit_algos.analysis.synthetic import synthetic_tracks_yaml
from lit_algos.errors import ConfigError, LitAlgosError
from lit_algos.leaderboard.tracks import get_track, load_tracks

PROJECT_BOARD = Path(__file__).resolve().parents[1] / "leaderboard"


def test_project_tracks_file_defines_the_required_tracks():
    tracks = load_tracks(PROJECT_BOARD)
    assert {"cpu-kjv", "gpu-fineweb-gpt2", "owt-sanderson"} <= set(tracks)
    cpu, gpu = tracks["cpu-kjv"], tracks["gpu-fineweb-gpt2"]
    assert (cpu.corpus, cpu.tokenizer, cpu.val_tokens, cpu.hardware_class) == (
        "kjv",
        "bpe:4096",
        65536,
        "2-core CPU",
    )
    assert (gpu.tokenizer, gpu.val_tokens, gpu.target_loss, gpu.hardware_class) == (
        "gpt2",
        10_485_760,
        3.28,
        "8xH100",
    )
    for track in tracks.values():
        assert track.alpha == 0.01 and track.rules and track.min_seeds_for_significance >= 2


def test_null_fingerprint_means_not_calibrated(tmp_path):
    (tmp_path / "tracks.yaml").write_text(synthetic_tracks_yaml())
    tracks = load_tracks(tmp_path)
    assert tracks["toy"].calibrated and not tracks["closed"].calibrated
    assert tracks["toy"].target_loss == 3.5 and tracks["toy"].baseline is None


@pytest.mark.parametrize(
    "edit, match",
    [
        (("alpha: 0.01", "alpha: 2"), "toy.alpha"),
        (("    rules: [Synthetic runs only.]", "    rules: [x]\n    colour: blue"), "toy.colour"),
        (
            (
                "    corpus: synthetic\n    tokenizer: bpe:4096\n    val_tokens: 65536\n    val_fingerprint: synthetic-val",
                "    corpus: synthetic\n    val_tokens: 65536\n    val_fingerprint: synthetic-val",
            ),
            "toy.tokenizer",
        ),
        (("min_seeds_for_significance: 3", "min_seeds_for_significance: 1"), "min_seeds_for_significance"),
    ],
)
def test_invalid_track_fields_name_the_field(tmp_path, edit, match):
    (tmp_path / "tracks.yaml").write_text(synthetic_tracks_yaml().replace(*edit, 1))
    with pytest.raises(ConfigError, match=match):
        load_tracks(tmp_path)


def test_unknown_track_and_missing_file(tmp_path):
    with pytest.raises(LitAlgosError, match="No tracks file"):
        load_tracks(tmp_path)
    (tmp_path / "tracks.yaml").write_text(synthetic_tracks_yaml())
    with pytest.raises(LitAlgosError, match="Unknown track 'nope'.*toy, closed"):
        get_track("nope", tmp_path)
