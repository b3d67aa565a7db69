"""A pytest plugin (``-p tests.newcomers.plugin``) that registers the newcomers before collection:
the equivalent of each one's import line in ``lit_algos/components/__init__.py`` or
``lit_algos/optim/__init__.py``."""

from tests.newcomers import dyt, gru, lion, step_decay  # noqa: F401  (registration)

NEWCOMERS = {"norm": "dyt", "optimizer": "lion", "schedule": "step_decay", "mixer": "gru"}
