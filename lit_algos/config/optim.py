"""Optimizer and learning-rate schedule config."""

from __future__ import annotations

from dataclasses import dataclass, field

from lit_algos.config.base import check_positive, check_range, check_registry


@dataclass
class ScheduleConfig:
    kind: str = "cosine"  # registry 'schedule': constant | linear | cosine | inverse_sqrt | wsd
    warmup_steps: int = 0  # linear warmup: step s (0-based) uses (s + 1) / warmup_steps of the peak
    min_lr_ratio: float = 0.1  # final LR as a fraction of the peak (linear, cosine, wsd)
    decay_fraction: float = 0.2  # wsd: the share of steps spent decaying at the end

    def __post_init__(self):
        check_registry("kind", self.kind, "schedule")
        check_positive("warmup_steps", self.warmup_steps, allow_zero=True)
        check_range("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        check_range("decay_fraction", self.decay_fraction, 0.0, 1.0)


@dataclass
class OptimConfig:
    name: str = "adamw"  # registry 'optimizer': sgd | adam | adamw | muon
    lr: float = 3e-3  # peak LR for the (Adam/AdamW/SGD) parameter groups
    embedding_lr: float | None = None  # peak LR of token/position embeddings; null: lr
    head_lr: float | None = None  # peak LR of an untied LM head; null: lr
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1  # applied to 2-D weight matrices only (not to norms, biases, embeddings)
    decay_embeddings: bool = False  # also decay the embedding and head matrices
    momentum: float = 0.9  # sgd
    muon_lr: float = 0.02  # muon: LR of the hidden 2-D matrices
    muon_momentum: float = 0.95
    muon_nesterov: bool = True
    muon_ns_steps: int = 5  # Newton-Schulz iterations that orthogonalise each update
    muon_weight_decay: float | None = None  # decoupled decay of the muon matrices; null: weight_decay
    grad_clip: float | None = 1.0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self):
        check_registry("name", self.name, "optimizer")
        check_positive("lr", self.lr)
        check_positive("embedding_lr", self.embedding_lr, allow_none=True)
        check_positive("head_lr", self.head_lr, allow_none=True)
        check_positive("muon_lr", self.muon_lr)
        check_positive("muon_ns_steps", self.muon_ns_steps)
        check_positive("eps", self.eps)
        check_positive("weight_decay", self.weight_decay, allow_zero=True)
        check_positive("muon_weight_decay", self.muon_weight_decay, allow_zero=True, allow_none=True)
        check_positive("grad_clip", self.grad_clip, allow_none=True)
        for i, beta in enumerate(self.betas):
            check_range(f"betas[{i}]", beta, 0.0, 1.0)
        check_range("momentum", self.momentum, 0.0, 1.0)
        check_range("muon_momentum", self.muon_momentum, 0.0, 1.0)
