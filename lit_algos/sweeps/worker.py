"""A local sweep worker: ``python -m lit_algos.sweeps.worker --runs-dir DIR SPEC_JSON``.

Trains (or resumes, or skips) one spec through :func:`lit_algos.sweeps.engine.run_spec` with the
thread count its parent chose (``LIT_ALGOS_THREADS``). Exit codes: 0 done, 1 failed, 130
interrupted. Its output goes to ``runs_dir/.sweep/logs/<spec_id>.log``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from lit_algos.sweeps.engine import run_spec
from lit_algos.sweeps.executors import spec_from_json, stop_with_parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lit_algos.sweeps.worker")
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("spec", help="the run spec as JSON (name, recipe, overrides, seed, tags)")
    args = parser.parse_args(argv)

    stop_with_parent()

    threads = int(os.environ.get("LIT_ALGOS_THREADS", "0")) or None
    try:
        # Plain progress lines: the log (runs_dir/.sweep/logs/<spec id>.log) can be followed with tail -f.
        run_dir = run_spec(spec_from_json(args.spec), args.runs_dir, threads=threads, progress="lines")
    except KeyboardInterrupt as err:
        print(f"interrupted: {err}", flush=True)
        return 130
    except BaseException:  # noqa: BLE001  (the parent shows the log's tail)
        traceback.print_exc()
        return 1
    print(f"done: {run_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
