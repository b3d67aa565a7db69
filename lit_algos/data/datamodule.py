"""The LightningDataModule over prepared shards: deterministic, DDP-aware and resumable.

Training data is a pure function of (seed, step). The train token stream is cut into
non-overlapping windows of seq_len + 1 tokens (stride seq_len); every epoch visits all windows
in a fresh permutation drawn from (seed, epoch), and the epochs follow one another forever.
Global batch ``s`` (optimizer step ``s``) is windows ``[s*B, (s+1)*B)`` of that endless order.

A global batch is split rank-major: rank ``r`` owns rows ``[r*B/W, (r+1)*B/W)`` and its
micro-batch ``a`` is rows ``a*m .. (a+1)*m`` of that block. With W*A*m = B the union over
ranks and micro-batches is exactly the global batch, whatever the world size, so the same
recipe sees the same data on 1 or 8 devices.

Validation is the whole fixed validation set in order: windows at k*seq_len, the last one
shorter when val_tokens is not a multiple of seq_len (its missing targets are IGNORE_INDEX).
Ranks take contiguous blocks of windows and pad with all-ignored windows, so every window is
evaluated exactly once and every rank runs the same number of batches. The model's forward skips
IGNORE_INDEX; weight each batch's mean loss by its count of ``y != IGNORE_INDEX`` and reduce over
all ranks (``LitGPT.validation_step``). The Trainer needs ``use_distributed_sampler=False``.
"""

from __future__ import annotations

import hashlib

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from lit_algos.data import prepare
from lit_algos.data.layout import batch_plan
from lit_algos.data.prepared import PreparedDataset
from lit_algos.data.shards import TokenStream
from lit_algos.errors import DataError, LitAlgosError
from lit_algos.loss import IGNORE_INDEX  # noqa: F401  (re-exported: the one loss convention, -100)


class TrainOrder:
    """The endless, seeded order of training windows and the batches it makes."""

    def __init__(self, stream: TokenStream, seq_len: int, batch_size: int, seed: int):
        self.stream, self.seq_len, self.batch_size, self.seed = stream, seq_len, batch_size, seed
        self.num_windows = (len(stream) - 1) // seq_len
        if self.num_windows < 1:
            raise DataError(
                f"The train split has {len(stream)} tokens, fewer than one sequence of {seq_len + 1}."
            )
        self._perm_epoch, self._perm = -1, None

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            digest = hashlib.sha256(f"lit_algos-train-order:{self.seed}:{epoch}".encode()).digest()
            g = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
            self._perm, self._perm_epoch = torch.randperm(self.num_windows, generator=g).numpy(), epoch
        return self._perm

    def windows(self, first: int, count: int) -> np.ndarray:
        """Window ids at positions [first, first+count) of the endless order."""
        out = np.empty(count, dtype=np.int64)
        for j, i in enumerate(range(first, first + count)):
            epoch, pos = divmod(i, self.num_windows)
            out[j] = self.permutation(epoch)[pos]
        return out

    def rows(self, step: int, start_row: int, count: int) -> torch.Tensor:
        """Rows [start_row, start_row+count) of global batch ``step``: (count, seq_len + 1) int64."""
        ids = self.windows(step * self.batch_size + start_row, count)
        seqs = [self.stream.read(int(w) * self.seq_len, self.seq_len + 1) for w in ids]
        return torch.from_numpy(np.stack(seqs))  # (count, T+1)


class TrainMicroBatches(IterableDataset):
    """(x, y) micro-batches of one rank from ``start_step`` on: step s micro 0..A-1, then step s+1, ..."""

    def __init__(
        self, order: TrainOrder, start_step: int, rank: int, world_size: int, micro: int, accum: int
    ):
        self.order, self.start_step, self.rank = order, start_step, rank
        self.world_size, self.micro, self.accum = world_size, micro, accum

    def __iter__(self):
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info else (0, 1)
        per_rank = self.micro * self.accum
        k = worker  # micro-batch counter from start_step; worker w makes every n-th, the loader interleaves in order
        while True:
            step, a = divmod(k, self.accum)
            rows = self.order.rows(self.start_step + step, self.rank * per_rank + a * self.micro, self.micro)
            yield rows[:, :-1], rows[:, 1:]  # (m, T), (m, T)
            k += n_workers


class ValWindows(Dataset):
    """One rank's share of the validation windows, padded with all-ignored windows to ``per_rank``."""

    def __init__(self, stream: TokenStream, seq_len: int, rank: int, world_size: int):
        self.stream, self.seq_len = stream, seq_len
        targets = len(stream) - 1
        self.num_windows = -(-targets // seq_len)  # ceil: the last window may be short
        self.per_rank = -(-self.num_windows // world_size)
        self.first = rank * self.per_rank

    def __len__(self) -> int:
        return self.per_rank

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        T = self.seq_len
        x = torch.zeros(T, dtype=torch.long)
        y = torch.full((T,), IGNORE_INDEX, dtype=torch.long)
        w = self.first + i
        if w < self.num_windows:
            n = min(T, len(self.stream) - 1 - w * T)  # targets in this window
            seq = torch.from_numpy(self.stream.read(w * T, n + 1))
            x[:n], y[:n] = seq[:-1], seq[1:]
        return x, y


class TokenDataModule(L.LightningDataModule):
    """Train micro-batches and the fixed validation set of a prepared dataset (module docstring).

    ``TokenDataModule.from_config(cfg)`` is the usual way in: it takes the corpus, tokenizer,
    sequence length, batch layout, seed and workers from a ``Config`` and prepares the dataset
    (``prepare_data``: tokenize once, cached) when the Trainer starts. The Trainer needs
    ``use_distributed_sampler=False`` on several devices, and ``accumulate_grad_batches`` equal to
    the micro-batches per optimizer step (``plan()``; ``lit_algos.trainer_kwargs(cfg)`` has both).
    """

    def __init__(
        self,
        prepared: PreparedDataset | None,
        seq_len: int,
        batch_size: int,
        micro_batch_size: int | None,
        seed: int,
        num_workers: int = 0,
        *,
        data_config=None,
    ):
        super().__init__()
        if prepared is None and data_config is None:
            raise ValueError("TokenDataModule needs a PreparedDataset or a data config (see from_config)")
        self._prepared, self._data_config = prepared, data_config
        self.seq_len, self.batch_size = seq_len, batch_size
        self.micro_batch_size, self.seed, self.num_workers = micro_batch_size, seed, num_workers
        self._start_step = 0  # used when no trainer is attached (or set by load_state_dict)
        self._order: TrainOrder | None = None
        self._val: TokenStream | None = None

    @classmethod
    def from_config(cls, cfg, prepared: PreparedDataset | None = None) -> TokenDataModule:
        """The datamodule of a ``Config`` (its data, block size, batch layout, seed and workers).
        Without ``prepared``, the dataset is prepared (or found in the cache) when first needed."""
        t = cfg.train
        return cls(
            prepared,
            cfg.model.block_size,
            t.batch_size,
            t.micro_batch_size,
            t.seed,
            cfg.data.num_workers,
            data_config=cfg.data,
        )

    @property
    def prepared(self) -> PreparedDataset:
        """The prepared dataset (shards, fingerprints); prepared now if it was not given."""
        if self._prepared is None:
            self._prepared = prepare.prepare_dataset(self._data_config)
        return self._prepared

    @property
    def bytes_per_token(self) -> float:
        """Validation bytes per token: bits per byte = loss / (ln 2 x this)."""
        return self.prepared.val_bytes / self.prepared.val_tokens

    def prepare_data(self) -> None:
        """Tokenize the corpus into the cache if it is not there yet (Lightning: once per node)."""
        _ = self.prepared

    # -- topology -------------------------------------------------------------------------------
    def _topology(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0
        return int(trainer.world_size), int(trainer.global_rank)

    def plan(self) -> tuple[int, int]:
        """(micro-batch size per rank, accumulation steps) for the current world size."""
        return batch_plan(self.batch_size, self.micro_batch_size, self._topology()[0])

    @property
    def order(self) -> TrainOrder:
        """The endless seeded order of training windows (opened on first use)."""
        if self._order is None:
            stream = TokenStream(self.prepared.train_files, limit=self.prepared.train_tokens)
            self._order = TrainOrder(stream, self.seq_len, self.batch_size, self.seed)
        return self._order

    @property
    def val_stream(self) -> TokenStream:
        """The validation tokens (opened on first use)."""
        if self._val is None:
            self._val = TokenStream(self.prepared.val_files, limit=self.prepared.val_tokens + 1)
        return self._val

    def setup(self, stage: str | None = None) -> None:
        _ = self.order, self.val_stream  # open and validate every shard before training starts

    # -- training -------------------------------------------------------------------------------
    def global_batch(self, step: int) -> torch.Tensor:
        """Global batch ``step`` as (B, seq_len + 1) int64; x = [:, :-1], y = [:, 1:]."""
        return self.order.rows(step, 0, self.batch_size)

    def start_step(self) -> int:
        """The optimizer step training (re)starts from: the Trainer's, or a loaded state's."""
        trainer = getattr(self, "trainer", None)
        return int(trainer.global_step) if trainer is not None else self._start_step

    def train_micro_batches(
        self, start_step: int | None = None, rank: int | None = None, world_size: int | None = None
    ) -> TrainMicroBatches:
        """One rank's (x, y) micro-batches from ``start_step`` on (defaults: this rank, this world size)."""
        world, r = self._topology()
        world = world if world_size is None else world_size
        r = r if rank is None else rank
        micro, accum = batch_plan(self.batch_size, self.micro_batch_size, world)
        start = self.start_step() if start_step is None else start_step
        return TrainMicroBatches(self.order, start, r, world, micro, accum)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train_micro_batches(),
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=False,
            pin_memory=torch.cuda.is_available(),
        )

    # -- validation -----------------------------------------------------------------------------
    def val_windows(self, rank: int | None = None, world_size: int | None = None) -> ValWindows:
        """One rank's share of the validation windows, padded so every rank runs as many batches."""
        world, r = self._topology()
        return ValWindows(
            self.val_stream,
            self.seq_len,
            r if rank is None else rank,
            world if world_size is None else world_size,
        )

    def val_dataloader(self) -> DataLoader:
        trainer = getattr(self, "trainer", None)
        connector = getattr(trainer, "_accelerator_connector", None)
        if (
            trainer is not None
            and trainer.world_size > 1
            and getattr(connector, "use_distributed_sampler", False)
        ):
            raise LitAlgosError(
                "TokenDataModule splits validation across ranks itself: create the Trainer with use_distributed_sampler=False."
            )
        micro, _ = self.plan()
        return DataLoader(
            self.val_windows(),
            batch_size=micro,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
        )

    # -- resumption -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "next_step": self.start_step(),
            "seed": self.seed,
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "val_fingerprint": self.prepared.val_fingerprint,
        }

    def load_state_dict(self, state: dict) -> None:
        for key, mine in (
            ("seed", self.seed),
            ("seq_len", self.seq_len),
            ("batch_size", self.batch_size),
            ("val_fingerprint", self.prepared.val_fingerprint),
        ):
            if key in state and state[key] != mine:
                raise DataError(
                    f"Cannot resume: the checkpoint's data {key} is {state[key]!r}, this run's is {mine!r}."
                )
        self._start_step = int(state.get("next_step", 0))
