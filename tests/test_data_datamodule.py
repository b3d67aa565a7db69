"""TokenDataModule: deterministic order, DDP slicing, validation coverage, resumption."""

from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch

from lit_algos.data import IGNORE_INDEX, PreparedDataset, TokenDataModule, batch_plan
from lit_algos.data.shards import write_shard
from lit_algos.errors import ConfigError, DataError


def make_prepared(root, train_tokens=1000, val_tokens=100, shard=400):
    """Synthetic shards whose token i is i (mod 4000), so a window's first token gives its position."""
    root.mkdir(parents=True, exist_ok=True)
    train = np.arange(train_tokens) % 4000
    files = [
        write_shard(root / f"train_{i:06d}.bin", train[s : s + shard])
        for i, s in enumerate(range(0, train_tokens, shard))
    ]
    val = write_shard(root / "val_000000.bin", 5000 + np.arange(val_tokens + 1))
    return PreparedDataset(
        root=root,
        train_files=files,
        val_files=[val],
        vocab_size=6000,
        eot_token=0,
        tokenizer="test",
        corpus="test",
        train_tokens=train_tokens,
        val_tokens=val_tokens,
        val_bytes=4 * val_tokens,
        corpus_fingerprint="c",
        tokenizer_fingerprint="t",
        val_fingerprint="v",
    )


@pytest.fixture
def prepared(tmp_path):
    return make_prepared(tmp_path / "ds")


def test_batch_plan():
    assert batch_plan(32, None, 1) == (32, 1)
    assert batch_plan(32, None, 4) == (8, 1)
    assert batch_plan(32, 4, 2) == (4, 4)
    assert batch_plan(32, 16, 2) == (16, 1)
    with pytest.raises(ConfigError, match="train.batch_size"):
        batch_plan(30, None, 4)
    with pytest.raises(ConfigError, match="train.micro_batch_size") as err:
        batch_plan(32, 3, 2)
    assert "1, 2, 4, 8, 16" in str(err.value)
    with pytest.raises(ConfigError, match="train.micro_batch_size"):
        batch_plan(32, 32, 2)  # bigger than a rank's share


def test_global_batches_are_windows_in_a_seeded_order(prepared):
    T, B = 10, 4
    dm = TokenDataModule(prepared, seq_len=T, batch_size=B, micro_batch_size=None, seed=0)
    n = (1000 - 1) // T  # 99 windows
    batch = dm.global_batch(0)
    assert batch.shape == (B, T + 1) and batch.dtype == torch.int64
    starts = batch[:, 0]
    assert torch.all(starts % T == 0)  # windows start at multiples of seq_len
    torch.testing.assert_close(
        batch, starts[:, None] + torch.arange(T + 1)
    )  # contiguous, across shard edges too
    # one epoch visits every window exactly once, then a new permutation starts
    seen = torch.cat([dm.global_batch(s)[:, 0] for s in range(-(-2 * n // B))])
    epoch0, epoch1 = seen[:n], seen[n : 2 * n]
    assert sorted(epoch0.tolist()) == [T * i for i in range(n)]
    assert sorted(epoch1.tolist()) == sorted(epoch0.tolist()) and not torch.equal(epoch0, epoch1)
    # a pure function of (seed, step): a fresh module agrees, another seed does not
    again = TokenDataModule(prepared, T, B, None, seed=0)
    assert torch.equal(again.global_batch(37), dm.global_batch(37))
    assert not torch.equal(TokenDataModule(prepared, T, B, None, seed=1).global_batch(0), batch)


@pytest.mark.parametrize("micro", [None, 1, 2])
def test_ddp_slices_union_to_the_global_batch(prepared, micro):
    """1, 2 and 4 ranks see exactly the same global batches (the same rows in the same order)."""
    B, T = 8, 16
    dm = TokenDataModule(prepared, T, B, micro, seed=3)
    for world in (1, 2, 4):
        m, accum = batch_plan(B, micro, world)
        iters = [iter(dm.train_micro_batches(start_step=5, rank=r, world_size=world)) for r in range(world)]
        for step in range(5, 8):
            per_rank = [torch.cat([next(it)[0] for _ in range(accum)]) for it in iters]
            got = torch.cat(per_rank)  # rank-major, then micro-batch
            assert got.shape == (B, T)
            torch.testing.assert_close(got, dm.global_batch(step)[:, :-1])
    x, y = next(iter(dm.train_micro_batches(start_step=0, rank=0, world_size=1)))
    torch.testing.assert_close(y[:, :-1], x[:, 1:])  # y is x shifted by one


def test_train_dataloader_follows_the_attached_trainer(prepared):
    dm = TokenDataModule(prepared, 8, 8, 2, seed=0)
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1, global_step=5)
    x, _ = next(iter(dm.train_dataloader()))
    torch.testing.assert_close(x, dm.global_batch(5)[4:6, :-1])  # rank 1 owns rows 4..7, micro 0 = rows 4..5


def test_workers_keep_the_order(prepared):
    dm = TokenDataModule(prepared, 8, 4, 2, seed=0, num_workers=2)
    single = TokenDataModule(prepared, 8, 4, 2, seed=0, num_workers=0)
    a = [x for x, _ in zip(dm.train_dataloader(), range(6))]
    b = [x for x, _ in zip(single.train_dataloader(), range(6))]
    for x1, x2 in zip(a, b):
        torch.testing.assert_close(x1[0], x2[0])


def test_state_dict_restores_the_position(prepared):
    dm = TokenDataModule(prepared, 8, 4, None, seed=0)
    dm.trainer = SimpleNamespace(world_size=1, global_rank=0, global_step=12)
    state = dm.state_dict()
    fresh = TokenDataModule(prepared, 8, 4, None, seed=0)
    fresh.load_state_dict(state)
    x, _ = next(iter(fresh.train_dataloader()))
    torch.testing.assert_close(x, dm.global_batch(12)[:, :-1])
    with pytest.raises(DataError, match="seed"):
        TokenDataModule(prepared, 8, 4, None, seed=1).load_state_dict(state)


@pytest.mark.parametrize("world", [1, 2, 3])
@pytest.mark.parametrize("seq_len", [10, 7])
def test_validation_covers_every_target_once(prepared, world, seq_len):
    dm = TokenDataModule(prepared, seq_len, batch_size=6, micro_batch_size=None, seed=0)
    targets, batches = [], set()
    for rank in range(world):
        dm.trainer = SimpleNamespace(
            world_size=world, global_rank=rank, global_step=0, _accelerator_connector=None
        )
        loader = dm.val_dataloader()
        batches.add(len(loader))
        for x, y in loader:
            assert x.shape == y.shape and x.shape[1] == seq_len
            keep = y != IGNORE_INDEX
            torch.testing.assert_close(y[keep], x[keep] + 1)  # val tokens are consecutive ints
            targets += y[keep].tolist()
    assert sorted(targets) == list(range(5001, 5101))  # all 100 targets, each exactly once
    assert len(batches) == 1  # every rank runs the same number of batches


def test_val_dataloader_requires_no_distributed_sampler(prepared):
    dm = TokenDataModule(prepared, 10, 4, None, seed=0)
    dm.trainer = SimpleNamespace(
        world_size=2,
        global_rank=0,
        global_step=0,
        _accelerator_connector=SimpleNamespace(use_distributed_sampler=True),
    )
    with pytest.raises(Exception, match="use_distributed_sampler=False"):
        dm.val_dataloader()


def test_too_little_train_data(tmp_path):
    dm = TokenDataModule(make_prepared(tmp_path / "tiny", train_tokens=5, shard=5), 8, 2, None, seed=0)
    with pytest.raises(DataError, match="fewer than one sequence"):
        dm.global_batch(0)


class Recorder(L.LightningModule):
    """A one-parameter model that records the first token of every sequence it trains on."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[list[int]] = []

    def training_step(self, batch, batch_idx):
        x, _ = batch
        self.seen.append(x[:, 0].tolist())
        return (self.w - 1.0) ** 2

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(prepared, root, max_steps, ckpt=None):
    dm = TokenDataModule(prepared, seq_len=8, batch_size=4, micro_batch_size=2, seed=0)
    model = Recorder()
    trainer = L.Trainer(
        max_steps=max_steps,
        accumulate_grad_batches=2,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        default_root_dir=str(root),
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    return trainer, dm, model


def test_lightning_resume_continues_where_it_stopped(prepared, tmp_path):
    trainer, dm, first = _fit(prepared, tmp_path, max_steps=3)
    assert trainer.global_step == 3
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    _, _, resumed = _fit(prepared, tmp_path, max_steps=5, ckpt=str(tmp_path / "last.ckpt"))
    expected = [dm.global_batch(s)[:, 0].tolist() for s in range(5)]
    as_steps = lambda seen: [seen[i] + seen[i + 1] for i in range(0, len(seen), 2)]  # noqa: E731
    assert as_steps(first.seen) == expected[:3]
    assert as_steps(resumed.seen) == expected[3:]
