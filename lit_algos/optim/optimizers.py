"""Registry axis 'optimizer': sgd, adam, adamw, muon, built from tagged parameter groups.

A model describes its parameters with ``model.parameter_tags() -> {name: tag}``:

- ``embedding``: token / position embeddings (and a tied LM head, which is the same tensor)
- ``head``: an untied LM head
- ``matrix``: 2-D hidden weights (attention and MLP projections)
- ``vector``: norm gains, biases, anything 1-D

Without that method a parameter with ``ndim >= 2`` is a ``matrix`` and any other a ``vector``.
``build_optimizer`` makes one param group per tag present (``group["tag"]``), so one optimizer
holds everything (as in nanochat) and a schedule scales all groups together. Each group stores
its peak LR in ``group["initial_lr"]``, which ``LambdaLR`` reads as its base LR.

Weight decay goes to ``matrix`` groups, and to ``embedding``/``head`` when
``cfg.decay_embeddings``; never to ``vector``. For ``adam`` (``torch.optim.Adam``) it is the
classic coupled L2 penalty; for ``adamw`` and ``muon`` it is decoupled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lit_algos.optim.muon import Muon
from lit_algos.registry import registry

if TYPE_CHECKING:
    from lit_algos.config.optim import OptimConfig

TAGS = ("matrix", "embedding", "head", "vector")  # also the order of the param groups
OPTIMIZERS = registry("optimizer")


# Wrappers that FSDP and activation checkpointing put between a module and its children.
WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def clean_name(name: str) -> str:
    """A parameter's name without wrapper prefixes: the same before and after FSDP wraps the blocks."""
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def parameter_tags(model: nn.Module, declared: dict[str, str] | None = None) -> dict[str, str]:
    """Tag of every trainable parameter, from ``declared`` (by clean name), else from
    ``model.parameter_tags()`` where the model has it, else from its shape.

    Under FSDP a parameter is a flat shard (1-D whatever its shape), so the tags are taken before
    the model is wrapped and passed as ``declared``.
    """
    if declared is None:
        declared = model.parameter_tags() if hasattr(model, "parameter_tags") else {}
    tags = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        tag = declared.get(clean_name(name)) or ("matrix" if p.ndim >= 2 else "vector")
        if tag not in TAGS:
            raise ValueError(f"parameter {name!r} has tag {tag!r}; allowed tags: {', '.join(TAGS)}")
        tags[name] = tag
    return tags


def _decays(tag: str, cfg: OptimConfig) -> bool:
    return tag == "matrix" or (cfg.decay_embeddings and tag in ("embedding", "head"))


def _adam_lr(tag: str, cfg: OptimConfig) -> float:
    if tag == "embedding" and cfg.embedding_lr is not None:
        return cfg.embedding_lr
    if tag == "head" and cfg.head_lr is not None:
        return cfg.head_lr
    return cfg.lr


def tagged_groups(
    model: nn.Module, cfg: OptimConfig, *, muon: bool = False, tags: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One param group per tag present: params, tag, lr, initial_lr, weight_decay (and use_muon).
    ``tags``: declared tags by clean name (see :func:`parameter_tags`)."""
    tags = parameter_tags(model, tags)
    by_tag: dict[str, list[nn.Parameter]] = {tag: [] for tag in TAGS}
    for name, p in model.named_parameters():
        if name in tags:
            by_tag[tags[name]].append(p)
    groups = []
    for tag in TAGS:
        params = by_tag[tag]
        if not params:
            continue
        use_muon = muon and tag == "matrix"
        if use_muon:
            lr = cfg.muon_lr
            wd = cfg.weight_decay if cfg.muon_weight_decay is None else cfg.muon_weight_decay
        else:
            lr = _adam_lr(tag, cfg)
            wd = cfg.weight_decay if _decays(tag, cfg) else 0.0
        group = {"params": params, "tag": tag, "lr": lr, "initial_lr": lr, "weight_decay": wd}
        if muon:
            group["use_muon"] = use_muon
        groups.append(group)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return groups


@OPTIMIZERS.register("sgd", help="SGD with momentum", options=("lr", "momentum", "weight_decay"))
def _sgd(model: nn.Module, cfg: OptimConfig, tags=None) -> torch.optim.Optimizer:
    return torch.optim.SGD(tagged_groups(model, cfg, tags=tags), lr=cfg.lr, momentum=cfg.momentum)


@OPTIMIZERS.register(
    "adam", help="Adam (weight decay as coupled L2)", options=("lr", "betas", "eps", "weight_decay")
)
def _adam(model: nn.Module, cfg: OptimConfig, tags=None) -> torch.optim.Optimizer:
    return torch.optim.Adam(tagged_groups(model, cfg, tags=tags), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


@OPTIMIZERS.register(
    "adamw", help="AdamW (decoupled weight decay)", options=("lr", "betas", "eps", "weight_decay")
)
def _adamw(model: nn.Module, cfg: OptimConfig, tags=None) -> torch.optim.Optimizer:
    return torch.optim.AdamW(tagged_groups(model, cfg, tags=tags), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


@OPTIMIZERS.register(
    "muon",
    help="Muon on hidden matrices + AdamW on embeddings, head and vectors",
    options=(
        "muon_lr",
        "muon_momentum",
        "muon_nesterov",
        "muon_ns_steps",
        "muon_weight_decay",
        "lr",
        "betas",
        "eps",
    ),
)
def _muon(model: nn.Module, cfg: OptimConfig, tags=None) -> torch.optim.Optimizer:
    return Muon(
        tagged_groups(model, cfg, muon=True, tags=tags),
        lr=cfg.lr, momentum=cfg.muon_momentum, nesterov=cfg.muon_nesterov, ns_steps=cfg.muon_ns_steps,
        betas=cfg.betas, eps=cfg.eps,
    )  # fmt: skip


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, tags: dict[str, str] | None = None
) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.name``, over all trainable parameters of ``model``.
    ``tags``: parameter tags taken before FSDP wrapped the model (see :func:`parameter_tags`)."""
    builder: Callable[..., torch.optim.Optimizer] = OPTIMIZERS.get(cfg.name)
    return builder(model, cfg, tags=tags)


# ---- learning-rate metrics ----------------------------------------------------------------------------
def param_group_kind(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> str:
    """The update rule a param group gets, as metric names use it: ``muon`` for Muon's matrix groups,
    ``adamw`` for its other groups, else the optimizer class in lower case (``adamw``, ``adam``, ``sgd``)."""
    if isinstance(optimizer, Muon):
        return "muon" if group.get("use_muon") else "adamw"
    return type(optimizer).__name__.lower()


def lr_metrics(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """The current learning rates as ``lr/<kind>`` (``lr/muon``, ``lr/adamw``, ...): the one place that
    names them. Groups of one kind share a name while they share a peak LR (the schedule scales all
    groups alike); a group with its own peak (``embedding_lr``, ``head_lr``) gets ``lr/<kind>/<tag>``."""
    optimizer = getattr(optimizer, "optimizer", optimizer)  # a LightningOptimizer wraps the real one
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for group in optimizer.param_groups:
        by_kind.setdefault(param_group_kind(optimizer, group), []).append(group)
    out: dict[str, float] = {}
    for kind, groups in by_kind.items():
        peaks = {g.get("initial_lr", g["lr"]) for g in groups}
        if len(peaks) == 1:
            out[f"lr/{kind}"] = float(groups[0]["lr"])
            continue
        for i, g in enumerate(groups):
            out[f"lr/{kind}/{g.get('tag', i)}"] = float(g["lr"])
    return out
