"""Weights & Biases logging: opt-in, offline-capable, and never the reason a run stops.

Mode (first that applies): ``train.wandb.mode`` in the config; ``$WANDB_DISABLED`` (true ->
disabled); ``$WANDB_MODE``; ``online`` when an API key is configured (``$WANDB_API_KEY`` or a
``~/.netrc`` entry for the W&B host); else ``offline``. An ``online`` run first checks that the
host (``$WANDB_BASE_URL``, default api.wandb.ai:443) accepts a TCP connection within ~2 s and
falls back to ``offline`` with a warning. Offline runs land in ``<save_dir>/wandb/offline-run-*``;
upload them later with ``wandb sync``.

Axes. A W&B metric has one default x-axis (``step_metric``), but a CEG question needs every curve
against tokens, FLOPs and training seconds. So every row that ``LitGPT`` logs carries its own
``tokens``, ``flops`` and ``train_seconds`` (and its optimizer step as ``trainer/global_step``):
the values of that step, or of that evaluation for ``val/*``. ``train/*``, ``val/*``, ``lr/*`` and
``moe/*`` are plotted against ``tokens`` by default; in a panel's settings, "X axis" picks ``flops``
or ``train_seconds`` instead, and the runs of a group overlay on that axis. Each metric is logged
once: no copies under other names.

Every W&B call is wrapped: a failure becomes a ``WandbWarning`` and, at worst, a run without W&B.
"""

from __future__ import annotations

import math
import netrc
import os
import socket
import threading
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from lit_algos.training.moe_callbacks import flat_metrics

if TYPE_CHECKING:
    from lit_algos.config import Config
    from lit_algos.records import RunRecord

AXES = ("tokens", "flops", "train_seconds")
SECTIONS = ("train", "val", "lr", "moe")  # metric prefixes plotted against tokens by default
REACH_TIMEOUT_S = 2.0
INIT_TIMEOUT_S = 30.0  # an online init that gets a connection but no answer gives up after this
MODES = ("online", "offline", "disabled", "shared")
_MODE_ALIASES = {"run": "online", "dryrun": "offline"}


class WandbWarning(UserWarning):
    """W&B could not do something; the run goes on without it."""


def _warn(message: str) -> None:
    warnings.warn(f"W&B: {message}", WandbWarning, stacklevel=3)


# ---- config -> config dict, tags ---------------------------------------------------------------------


def _config_dict(cfg: Config | Mapping[str, Any]) -> dict[str, Any]:
    if hasattr(cfg, "to_dict"):
        return cfg.to_dict()
    if isinstance(cfg, Mapping):
        return dict(cfg)
    raise TypeError(f"expected a Config or a config mapping, got {type(cfg).__name__}")


def flatten_config(d: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """``{"model": {"n_layer": 2}}`` -> ``{"model.n_layer": 2}``; tuples become lists, empty mappings stay."""
    flat: dict[str, Any] = {}
    for key, value in d.items():
        path = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, path, sep))
        elif isinstance(value, tuple):
            flat[path] = list(value)
        else:
            flat[path] = value
    return flat


def component_tags(cfg: Config | Mapping[str, Any]) -> list[str]:
    """Tags naming the run's components, e.g. ``attention:gqa``, ``norm:rmsnorm``, ``optim:muon``, ``untied``.

    Accepts a ``Config`` or its dict form (``RunRecord.config``), so old records can be tagged too.
    """
    data = _config_dict(cfg)
    model, optim, train = data.get("model", {}), data.get("optim", {}), data.get("train", {})
    tags: list[str] = []

    def kind_of(section: Any) -> str | None:
        return section.get("kind") if isinstance(section, Mapping) else section

    mixer = kind_of(model.get("mixer"))
    if mixer and mixer != "transformer":  # the default is not tagged (as when records stored it as null)
        tags.append(f"mixer:{mixer}")
    att = model.get("attention", {})
    if att.get("kind"):
        tags.append(f"attention:{att['kind']}")
    if att.get("backend"):
        tags.append(f"attention_backend:{att['backend']}")
    if att.get("qk_norm"):
        tags.append("qk_norm")
    norm = model.get("norm", {})
    if norm.get("kind"):
        tags.append(f"norm:{norm['kind']}")
        if norm["kind"] != "none" and norm.get("placement"):
            tags.append(f"norm_placement:{norm['placement']}")
    for axis in ("position", "mlp"):
        kind = kind_of(model.get(axis))
        if kind:
            tags.append(f"{axis}:{kind}")
    if "tie_embeddings" in model:
        tags.append("tied" if model["tie_embeddings"] else "untied")
    if "bias" in model:
        tags.append("bias" if model["bias"] else "no_bias")
    if model.get("logit_softcap"):
        tags.append("logit_softcap")
    if model.get("dropout"):
        tags.append("dropout")
    optimizer = optim.get("kind") or optim.get("name")  # name: the flat layout of records before issue 28
    if optimizer:
        tags.append(f"optim:{optimizer}")
    schedule = kind_of(optim.get("schedule"))
    if schedule:
        tags.append(f"schedule:{schedule}")
    if train.get("precision"):
        tags.append(f"precision:{train['precision']}")
    if train.get("compile"):
        tags.append("compile")
    return tags


# ---- mode, API key, reachability ----------------------------------------------------------------------


def wandb_host() -> tuple[str, int]:
    """Host and port of the W&B server ($WANDB_BASE_URL, default https://api.wandb.ai)."""
    url = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    host = url.hostname or "api.wandb.ai"
    return host, url.port or (80 if url.scheme == "http" else 443)


def has_api_key(host: str | None = None) -> bool:
    """Whether an API key is configured: $WANDB_API_KEY, or a netrc entry ($NETRC or ~/.netrc) for ``host``."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = host or wandb_host()[0]
    path = os.environ.get("NETRC") or os.path.join(os.path.expanduser("~"), ".netrc")
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def is_reachable(host: str, port: int, timeout: float = REACH_TIMEOUT_S) -> bool:
    """Whether ``host:port`` accepts a TCP connection within ``timeout`` seconds (DNS included)."""
    ok: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    # getaddrinfo ignores socket timeouts, so the whole probe runs in a thread we stop waiting for.
    thread = threading.Thread(target=probe, name="wandb-reachability", daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(ok)


def resolve_mode(cfg_mode: str | None) -> str:
    """online | offline | disabled | shared, from the config, the environment and the API key (see module doc)."""
    if cfg_mode:
        return cfg_mode
    if os.environ.get("WANDB_DISABLED", "").strip().lower() in ("1", "true", "yes"):
        return "disabled"
    env = os.environ.get("WANDB_MODE", "").strip().lower()
    if env:
        mode = _MODE_ALIASES.get(env, env)
        if mode in MODES:
            return mode
        _warn(f"WANDB_MODE={env!r} is not one of {', '.join(MODES)}; logging offline.")
        return "offline"
    return "online" if has_api_key() else "offline"


# ---- the logger ----------------------------------------------------------------------------------------


class LitAlgosWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger`` with the axes of this module, and failures as warnings."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:  # newer wandb warns about the key even when None
            self._wandb_init.pop("anonymous", None)
        self._defined: set[str] = set()
        self._failed = False

    def _define(self, keys: list[str]) -> None:
        for key in keys:
            if key in self._defined or "/" not in key:
                continue
            axis = step_metric_for(key)
            if axis is not None:
                # An exact definition: it wins over Lightning's catch-all "*" -> trainer/global_step.
                self.experiment.define_metric(key, step_metric=axis)
            self._defined.add(key)

    def _fail(self, what: str, err: Exception) -> None:
        if not self._failed:
            _warn(
                f"{what} failed ({type(err).__name__}: {err}); W&B logging is off for the rest of this run."
            )
        self._failed = True

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._failed:
            return
        try:
            self._define(list(metrics))
            super().log_metrics(dict(metrics), step)
        except Exception as err:
            self._fail("log_metrics", err)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        if self._failed:
            return
        try:
            # LitGPT's hyperparameters hold the resolved config, which the run's config already has
            # flattened (model.n_layer, ...): flatten it the same way rather than add a nested copy.
            params = dict(params) if isinstance(params, Mapping) else dict(vars(params))
            nested = params.pop("config", None)
            if isinstance(nested, Mapping):
                params.update(flatten_config(nested))
            super().log_hyperparams(params)
        except Exception as err:
            self._fail("log_hyperparams", err)


def step_metric_for(key: str) -> str | None:
    """The default x-axis of a metric: ``tokens`` for train/*, val/*, lr/* and moe/*; None otherwise."""
    return "tokens" if key.split("/", 1)[0] in SECTIONS else None


def make_wandb_logger(
    cfg: Config | Mapping[str, Any], run_id: str, save_dir: Path
) -> LitAlgosWandbLogger | None:
    """A started W&B logger for this run, or None (W&B off, not installed, disabled, or failing).

    ``cfg.train.wandb``: enabled (else None), project, entity, group (default: the recipe name),
    mode. Tags come from ``component_tags``, the config is logged flattened (dotted keys) with
    ``run_id`` and ``config_hash``. The W&B run starts here (on rank 0), so an init failure is a
    warning now rather than an exception in the middle of ``fit``.
    """
    data = _config_dict(cfg)
    wcfg = data.get("train", {}).get("wandb", {})
    if not wcfg.get("enabled"):
        return None
    try:
        # optional dependency (the wandb extra)
        import wandb
    except ImportError:
        _warn("wandb is not installed (pip install 'lit_algos[wandb]'); running without it.")
        return None
    mode = resolve_mode(wcfg.get("mode"))
    if mode == "disabled":
        return None
    if mode in ("online", "shared") and rank_zero_only.rank == 0:
        host, port = wandb_host()
        if not is_reachable(host, port):
            _warn(
                f"{host}:{port} is not reachable within {REACH_TIMEOUT_S:.0f} s; logging offline (wandb sync later)."
            )
            mode = "offline"
    config = flatten_config(data)
    config["run_id"] = run_id
    if hasattr(cfg, "config_hash"):
        config["config_hash"] = cfg.config_hash()
    try:
        save_dir = Path(save_dir)
        save_dir.mkdir(parents=True, exist_ok=True)
        logger = LitAlgosWandbLogger(
            name=run_id,
            save_dir=str(save_dir),
            project=wcfg.get("project") or "lit_algos",
            entity=wcfg.get("entity"),
            group=wcfg.get("group") or data.get("name"),
            tags=component_tags(data) + [t for t in wcfg.get("tags") or [] if t],
            config=config,
            mode=mode,
            job_type="train",
            settings=wandb.Settings(init_timeout=INIT_TIMEOUT_S),
        )
        _ = logger.experiment  # start the run now (a no-op stand-in on ranks other than 0)
    except Exception as err:
        _warn(f"could not start a run ({type(err).__name__}: {err}); running without W&B.")
        return None
    define_metrics(logger)
    return logger


@rank_zero_only
def define_metrics(logger: WandbLogger | None) -> None:
    """Declare the axes and the glob rules of the scheme (exact names are declared on first log too)."""
    if logger is None:
        return
    try:
        exp = logger.experiment
        for axis in AXES:
            exp.define_metric(axis)
        for section in SECTIONS:
            exp.define_metric(f"{section}/*", step_metric="tokens")
    except Exception as err:
        _warn(f"define_metric failed ({type(err).__name__}: {err}); charts use the default x-axis.")


def summary_of(record: RunRecord) -> dict[str, Any]:
    """The to-target figures of a run record as flat summary keys (None values left out)."""
    summary: dict[str, Any] = {
        "status": record.status,
        "reached": record.reached,
        "target_loss": record.target_loss,
        "run_id": record.run_id,
        "recipe": record.recipe,
        "config_hash": record.config_hash,
        "world_size": record.world_size,
        "mfu": record.mfu,
        "tokens_per_second": record.tokens_per_second,
        "eval_seconds": record.eval_seconds,
        "warmup_seconds": record.warmup_seconds,
        "val_fingerprint": record.val_fingerprint,
    }
    if record.to_target is not None:
        for key in ("step", "tokens", "flops", "train_seconds"):
            summary[f"to_target/{key}"] = getattr(record.to_target, key)
    if record.final is not None:
        for key in ("step", "tokens", "flops", "train_seconds", "val_loss", "val_bpb"):
            summary[f"final/{key}"] = getattr(record.final, key)
    finite = [p for p in record.curve if math.isfinite(p.val_loss)]  # a diverged run may end in nan
    if finite:
        summary["best/val_loss"] = min(p.val_loss for p in finite)
        summary["best/val_bpb"] = min(p.val_bpb for p in finite)
    for key, value in record.params.items():
        summary[f"params/{key}"] = value
    for key, value in record.flops_per_token.items():
        summary[f"flops_per_token/{key}"] = value
    moe = record.component_metrics.get("moe")
    if moe:  # MoE load statistics over the last steps (lit_algos.training.moe_callbacks)
        summary["moe/aux_loss"] = moe.get("aux_loss")
        summary["moe/max_over_mean"] = moe.get("max_over_mean")
        summary.update(flat_metrics(moe.get("layers", [])))
    if record.error:
        summary["error"] = record.error[:1000]
    return {k: v for k, v in summary.items() if v is not None}


@rank_zero_only
def log_summary(logger: WandbLogger | None, record: RunRecord) -> None:
    """Put the run's to-target figures (``summary_of``) into the W&B run summary."""
    if logger is None:
        return
    try:
        logger.experiment.summary.update(summary_of(record))
    except Exception as err:
        _warn(f"could not write the run summary ({type(err).__name__}: {err}).")


@rank_zero_only
def finish_wandb(logger: WandbLogger | None, exit_code: int = 0) -> None:
    """Close the W&B run (exit_code != 0 marks it failed). Call once per run, after ``log_summary``."""
    if logger is None:
        return
    try:
        logger.experiment.finish(exit_code=exit_code)
    except Exception as err:
        _warn(f"could not finish the run ({type(err).__name__}: {err}).")
