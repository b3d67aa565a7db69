"""Lion (Chen et al. 2023): the sign of an interpolated momentum, with decoupled weight decay."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lit_algos.optim.optimizers import OPTIMIZERS, OptimizerOptions, tagged_groups
from lit_algos.utils.typed import check_range


@dataclass
class LionOptions(OptimizerOptions):
    betas: tuple[float, float] = (0.9, 0.99)

    def __post_init__(self):
        super().__post_init__()
        for i, beta in enumerate(self.betas):
            check_range(f"betas[{i}]", beta, 0.0, 1.0)


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-4, betas=(0.9, 0.99), weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(torch.sign(beta1 * m + (1 - beta1) * p.grad), alpha=-group["lr"])
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)


@OPTIMIZERS.register("lion", help="Lion: sign of the momentum", options=LionOptions, example={"lr": 3e-3})
def _lion(model, cfg: LionOptions, tags=None) -> torch.optim.Optimizer:
    return Lion(tagged_groups(model, cfg, tags=tags), lr=cfg.lr, betas=cfg.betas)
