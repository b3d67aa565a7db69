"""lit_algos: measure algorithmic progress in language-model training.

The Python API (names load lazily, so ``import lit_algos`` stays light; see the README):

    import lit_algos as la
    cfg = la.load_config("modern", ["model.n_layer=4"])     # a recipe, with overrides
    model = la.build_model(cfg.model)                       # the composed GPT (torch.nn.Module)
    record = la.train(cfg, callbacks=[...], loggers=[...])  # train to the target -> RunRecord
    L.Trainer(logger=...).fit(la.LitGPT(cfg), datamodule=la.TokenDataModule.from_config(cfg))  # your Trainer
    runs = la.load_runs(["runs/retro", "modern"])           # records by path, run dir or recipe
    report = la.compare(refs, news)                         # CEG of news over refs
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "Config": "lit_algos.config",
    "load_config": "lit_algos.config.recipes",
    "GPT": "lit_algos.model",
    "build_model": "lit_algos.model",
    "param_counts": "lit_algos.model",
    "train": "lit_algos.training.run",
    "resume": "lit_algos.training.run",
    "RunPlan": "lit_algos.training.plan",
    "plan_run": "lit_algos.training.plan",
    "LitGPT": "lit_algos.training.module",
    "TrainClock": "lit_algos.training.callbacks",
    "trainer_kwargs": "lit_algos.training.trainer",
    "TokenDataModule": "lit_algos.data",
    "prepare_dataset": "lit_algos.data",
    "RunRecord": "lit_algos.records",
    "EvalPoint": "lit_algos.records",
    "compare": "lit_algos.analysis.ceg",
    "ceg_value": "lit_algos.analysis.ceg",
    "attribute": "lit_algos.analysis.attribution",
    "fit_scaling_law": "lit_algos.analysis.scaling",
    "compute_dependence": "lit_algos.analysis.scaling",
}
_RENAMED = {"load_runs": ("lit_algos.analysis.runs", "resolve_runs")}

__all__ = sorted([*_API, *_RENAMED, "__version__"])


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
    elif name in _RENAMED:
        module, attr = _RENAMED[name]
        value = getattr(importlib.import_module(module), attr)
    else:
        raise AttributeError(f"module 'lit_algos' has no attribute {name!r}")
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__():
    return __all__
