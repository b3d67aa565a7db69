"""Registry axis 'optimizer': sgd, adam, adamw here, muon in ``muon.py``, built from tagged parameter groups.

Every entry follows the registry contract (``lit_algos.registry``): its options derive from
``OptimizerOptions`` (the fields every optimizer reads: ``lr``, ``embedding_lr``, ``head_lr``,
``weight_decay``, ``decay_embeddings``, ``grad_clip``, ``schedule``) and add its own (``momentum``
for sgd; ``betas``, ``eps`` for the Adam family; Muon's ``muon_*``); ``validate(config)`` checks
them against the whole ``Config`` (Muon refuses FSDP). The target is a builder
``(model, options, tags=None) -> torch.optim.Optimizer``; ``tags`` are declared parameter tags.
A recipe names the entry with ``optim: {kind: adamw, ...}``. A new optimizer is one file in this
package (options, builder, ``OPTIMIZERS.register``) and one import line in ``__init__.py``; the
parametrized tests (a toy regression every entry must fit, state-dict round trip, param-group
roles) cover it from its ``example`` options.

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
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lit_algos.registry import ComponentOptions, component_field, registry, validate_sections
from lit_algos.utils.typed import check_positive, check_range

TAGS = ("matrix", "embedding", "head", "vector")  # also the order of the param groups


@dataclass
class OptimizerOptions(ComponentOptions):
    """The ``optim`` section's fields every optimizer reads (the base of every entry's options)."""

    lr: float = 3e-3  # peak LR of the (Adam/AdamW/SGD) parameter groups
    embedding_lr: float | None = None  # peak LR of token/position embeddings; null: lr
    head_lr: float | None = None  # peak LR of an untied LM head; null: lr
    weight_decay: float = 0.1  # applied to 2-D weight matrices only (not to norms, biases, embeddings)
    decay_embeddings: bool = False  # also decay the embedding and head matrices
    grad_clip: float | None = 1.0  # gradient-norm clipping (LitGPT.configure_gradient_clipping); null: none
    schedule: ComponentOptions = component_field("schedule", "cosine")  # registry 'schedule'

    def __post_init__(self):
        check_positive("lr", self.lr)
        check_positive("embedding_lr", self.embedding_lr, allow_none=True)
        check_positive("head_lr", self.head_lr, allow_none=True)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("grad_clip", self.grad_clip, allow_none=True)

        validate_sections(self)  # the schedule


@dataclass
class SGDOptions(OptimizerOptions):
    momentum: float = 0.9

    def __post_init__(self):
        super().__post_init__()
        check_range("momentum", self.momentum, 0.0, 1.0)


@dataclass
class AdamOptions(OptimizerOptions):
    """Adam and AdamW (and the AdamW groups of Muon)."""

    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8

    def __post_init__(self):
        super().__post_init__()
        check_positive("eps", self.eps)
        for i, beta in enumerate(self.betas):
            check_range(f"betas[{i}]", beta, 0.0, 1.0)


OPTIMIZERS = registry("optimizer", options_base=OptimizerOptions)


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


def _decays(tag: str, cfg: OptimizerOptions) -> bool:
    return tag == "matrix" or (cfg.decay_embeddings and tag in ("embedding", "head"))


def _adam_lr(tag: str, cfg: OptimizerOptions) -> float:
    if tag == "embedding" and cfg.embedding_lr is not None:
        return cfg.embedding_lr
    if tag == "head" and cfg.head_lr is not None:
        return cfg.head_lr
    return cfg.lr


def tagged_groups(
    model: nn.Module, cfg: OptimizerOptions, *, tags: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """One param group per tag present: params, tag, lr, initial_lr, weight_decay.
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
        lr = _adam_lr(tag, cfg)
        wd = cfg.weight_decay if _decays(tag, cfg) else 0.0
        groups.append({"params": params, "tag": tag, "lr": lr, "initial_lr": lr, "weight_decay": wd})
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return groups


@OPTIMIZERS.register("sgd", help="SGD with momentum", options=SGDOptions, example={"lr": 0.05})
def _sgd(model: nn.Module, cfg: SGDOptions, tags: dict[str, str] | None = None) -> torch.optim.Optimizer:
    return torch.optim.SGD(tagged_groups(model, cfg, tags=tags), lr=cfg.lr, momentum=cfg.momentum)


@OPTIMIZERS.register(
    "adam", help="Adam (weight decay as coupled L2)", options=AdamOptions, example={"lr": 0.01}
)
def _adam(model: nn.Module, cfg: AdamOptions, tags: dict[str, str] | None = None) -> torch.optim.Optimizer:
    return torch.optim.Adam(tagged_groups(model, cfg, tags=tags), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


@OPTIMIZERS.register(
    "adamw", help="AdamW (decoupled weight decay)", options=AdamOptions, example={"lr": 0.01}
)
def _adamw(model: nn.Module, cfg: AdamOptions, tags: dict[str, str] | None = None) -> torch.optim.Optimizer:
    return torch.optim.AdamW(tagged_groups(model, cfg, tags=tags), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


def build_optimizer(
    model: nn.Module, cfg: OptimizerOptions, tags: dict[str, str] | None = None
) -> torch.optim.Optimizer:
    """The optimizer named by ``cfg.kind``, over all trainable parameters of ``model``.
    ``tags``: parameter tags taken before FSDP wrapped the model (see :func:`parameter_tags`)."""
    builder: Callable[..., torch.optim.Optimizer] = OPTIMIZERS.get(cfg.kind)
    return builder(model, cfg, tags=tags)


# ---- learning-rate metrics ----------------------------------------------------------------------------
def param_group_kind(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> str:
    """The update rule a param group gets, as metric names use it: ``muon`` for Muon's matrix groups,
    ``adamw`` for its other groups (a group with ``use_muon``), else the optimizer class in lower
    case (``adamw``, ``adam``, ``sgd``)."""
    if "use_muon" in group:
        return "muon" if group["use_muon"] else "adamw"
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
