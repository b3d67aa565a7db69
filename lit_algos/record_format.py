"""What a run record's format is made of, shared by ``records`` (the dataclass) and ``schema``
(its validator, which ``records`` calls): the format version and the statuses. A module of its own
so that neither imports the other at module level (``schema`` loads pydantic, which
``lit-algos --help`` does not need).
"""

SCHEMA_VERSION = 1
# running: in progress. A record left "running" by a process that is gone (kill -9, power loss)
#   reads as interrupted (see RunRecord.owner): its curve is complete up to the last evaluation
#   and --resume continues it;
# interrupted: stopped by Ctrl-C / SIGTERM; failed: stopped by an error (both resumable);
# reached / budget_exhausted / diverged: finished, never resumed.
STATUSES = ("running", "interrupted", "reached", "budget_exhausted", "diverged", "failed")
FINISHED_STATUSES = ("reached", "budget_exhausted", "diverged")
RESUMABLE_STATUSES = ("running", "interrupted", "failed")
