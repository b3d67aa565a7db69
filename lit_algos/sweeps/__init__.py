"""Sweeps: lists of run specs trained by an executor (local processes or SLURM via submitit).

from lit_algos.sweeps import RunSpec, plan_sweep, run_sweep
"""

from lit_algos.sweeps.engine import PlannedRun, plan_sweep, run_spec
from lit_algos.sweeps.runner import SweepError, plan_rows, plan_table, run_sweep
from lit_algos.sweeps.spec import RunSpec

__all__ = [
    "PlannedRun",
    "RunSpec",
    "SweepError",
    "plan_rows",
    "plan_sweep",
    "plan_table",
    "run_spec",
    "run_sweep",
]
