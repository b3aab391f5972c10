import numpy as np
import pytest
import torch

from ftkit.errors import ConfigError
from ftkit.training import checkpoint
from ftkit.training.batches import epoch_batches
from ftkit.training.device import resolve_precision


def test_epoch_batches_cover_each_row_once_and_repeat_per_seed():
    lengths = np.random.default_rng(0).integers(5, 100, size=203)
    batches = epoch_batches(lengths, 16, seed=1, epoch=2, group_by_length=True)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(203))
    again = epoch_batches(lengths, 16, seed=1, epoch=2, group_by_length=True)
    assert all((a == b).all() for a, b in zip(batches, again))
    other = epoch_batches(lengths, 16, seed=1, epoch=3, group_by_length=True)
    assert not all(len(a) == len(b) and (a == b).all() for a, b in zip(batches, other))


def test_length_grouping_cuts_padding():
    lengths = np.random.default_rng(0).integers(5, 100, size=2000)

    def padded(batches):
        return sum(lengths[b].max() * len(b) for b in batches)

    grouped = padded(epoch_batches(lengths, 16, 0, 0, True))
    plain = padded(epoch_batches(lengths, 16, 0, 0, False))
    assert grouped < 0.7 * plain


@pytest.mark.precision
def test_checkpoint_round_trip_restores_optimizer_scheduler_and_rng(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 / (s + 1))
    for _ in range(3):
        model(torch.randn(5, 4)).sum().backward()
        opt.step(), sched.step(), opt.zero_grad()
    checkpoint.save(tmp_path, model, opt, sched, {"global_step": 3})
    expected = torch.rand(3)

    torch.manual_seed(99)
    model2 = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2))
    opt2 = torch.optim.AdamW(model2.parameters(), lr=0.1)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 1 / (s + 1))
    state = checkpoint.restore(checkpoint.latest(tmp_path), model2, opt2, sched2)
    assert state == {"global_step": 3}
    assert torch.equal(torch.rand(3), expected)  # RNG continues where it was saved
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)
        assert torch.equal(opt.state[p]["exp_avg_sq"], opt2.state[q]["exp_avg_sq"])
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind


def test_precision_env_overrides_auto_only(monkeypatch):
    cpu = torch.device("cpu")
    for forced in ("fp32", "bf16"):
        monkeypatch.setenv("FTKIT_PRECISION", forced)
        assert resolve_precision("auto", cpu) == forced
        assert resolve_precision("fp32", cpu) == "fp32"  # a config that names one keeps it
    monkeypatch.setenv("FTKIT_PRECISION", "fp16")
    with pytest.raises(ConfigError, match="FTKIT_PRECISION=fp16: choose auto, fp32 or bf16"):
        resolve_precision("auto", cpu)
