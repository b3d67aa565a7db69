"""FSDP for ``train.strategy: fsdp``: Lightning's FSDPStrategy, and the same on CPU processes.

Every transformer block is an FSDP unit of its own, and checkpoints hold the full (unsharded)
model and optimizer state, so ``sample``, ``export`` and a resume read them as they read DDP
checkpoints. Muon is refused under FSDP by the config (it orthogonalises whole matrices).

On GPUs this is Lightning's FSDPStrategy as it is. On CPU (gloo), torch's FSDP trains, but three
things in the wrappers stand in the way, each fixed in :class:`CPUFSDPStrategy`:

1. Lightning refuses the name ``fsdp`` without a GPU. It checks ``type(strategy) is
   FSDPStrategy``, so an instance of a subclass passes.
2. Lightning wraps with ``device_id=None``, from which torch infers an accelerator and raises
   "FSDP needs a non-CPU accelerator device, but no accelerator device is detected". The
   subclass wraps with ``device_id=cpu`` first; Lightning then finishes the set-up.
3. Lightning gathers full state dicts with ``offload_to_cpu=True``, which on CPU parameters
   crashes torch 2.13 (SIGSEGV in ``_full_post_state_dict_hook``: the offloaded copy aliases the
   freed unsharded buffer). The subclass gathers without offloading: the tensors are on CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.trainer.states import TrainerFn
from torch.distributed.fsdp import (
    FullOptimStateDictConfig,
    FullStateDictConfig,
    FullyShardedDataParallel,
    OptimStateKeyType,
    StateDictType,
)
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from lit_algos.model import Block


def build_fsdp_strategy(accelerator: str) -> FSDPStrategy:
    cls = FSDPStrategy if accelerator == "gpu" else CPUFSDPStrategy
    return cls(auto_wrap_policy={Block}, state_dict_type="full", sharding_strategy="FULL_SHARD")


def _full_state(module, rank0_only: bool):
    """FSDP's full state-dict context without offloading (the tensors are on CPU already)."""
    return FSDP.state_dict_type(
        module,
        StateDictType.FULL_STATE_DICT,
        FullStateDictConfig(offload_to_cpu=False, rank0_only=rank0_only),
        FullOptimStateDictConfig(offload_to_cpu=False, rank0_only=rank0_only),
    )


class CPUFSDPStrategy(FSDPStrategy):
    """FSDPStrategy on CPU processes (gloo); see the module docstring for what differs."""

    def _setup_model(self, model):
        if not any(isinstance(m, FullyShardedDataParallel) for m in model.modules()):
            model = FullyShardedDataParallel(
                module=model,
                cpu_offload=self.cpu_offload,
                mixed_precision=self.mixed_precision_config,
                sharding_strategy=self.sharding_strategy,
                device_id=torch.device("cpu"),
                **self.kwargs,
            )
            self.kwargs.pop("auto_wrap_policy", None)  # applied; Lightning would warn that it is ignored
        return super()._setup_model(model)

    def lightning_module_state_dict(self) -> dict[str, Any]:
        with _full_state(self.model, rank0_only=True):
            return self.model.state_dict()

    def optimizer_state(self, optimizer) -> dict[str, Any]:
        optimizer = getattr(optimizer, "_optimizer", optimizer)  # a LightningOptimizer's own
        with _full_state(self.model, rank0_only=True):
            state = FSDP.optim_state_dict(self.model, optimizer)
            if self.global_rank == 0:  # the same layout as Lightning's full checkpoints
                state = FSDP.rekey_optim_state_dict(state, OptimStateKeyType.PARAM_ID, self.model)
            return state

    def load_checkpoint(self, checkpoint_path, weights_only: bool | None = None) -> dict[str, Any]:
        """A full checkpoint (one file), on every rank: model, then optimizer state when fitting."""
        path = Path(self.broadcast(checkpoint_path))
        checkpoint = torch.load(path, map_location="cpu", weights_only=bool(weights_only))
        module = self.lightning_module
        with _full_state(self.model, rank0_only=False):
            self.model.load_state_dict(checkpoint.pop("state_dict"), strict=module.strict_loading)
        states = checkpoint.get("optimizer_states")
        if states is None or module.trainer.state.fn != TrainerFn.FITTING:
            return checkpoint
        with _full_state(self.model, rank0_only=False):
            for optimizer, state in zip(self.optimizers, states):
                if isinstance(next(iter(state["state"]), None), int):
                    state = FSDP.rekey_optim_state_dict(state, OptimStateKeyType.PARAM_NAME, self.model)
                state = FSDP.optim_state_dict_to_load(
                    model=self.model, optim=optimizer, optim_state_dict=state
                )
                optimizer.load_state_dict(state)
        return checkpoint
