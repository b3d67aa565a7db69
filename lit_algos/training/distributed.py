"""The DDP launch protocol in one place.

Lightning's DDP launcher re-runs the command line in each worker process (``RANK`` /
``LOCAL_RANK`` set). Every worker must train the same run, so rank 0 publishes the run id in
the environment before ``fit`` launches the workers, and a worker takes the id (and, on resume,
the run directory) from there instead of creating or searching for its own.
"""

from __future__ import annotations

import contextlib
import os

RUN_ID_ENV = "LIT_ALGOS_RUN_ID"


def inherited_run_id() -> str | None:
    """The run id rank 0 chose, when this process is a DDP worker of that run."""
    return os.environ.get(RUN_ID_ENV) or None


def is_rank_zero() -> bool:
    """Whether this process prints summaries (rank 0 of a DDP launch, or a single process)."""
    return os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) == "0"


@contextlib.contextmanager
def publish_run_id(run_id: str):
    """Workers launched inside this block re-run the command and must reuse ``run_id``."""
    os.environ[RUN_ID_ENV] = run_id
    try:
        yield
    finally:
        os.environ.pop(RUN_ID_ENV, None)
