"""Weight averaging (train.average: greedy-soup): which snapshots are kept, which join the soup,
the weights the model ends with, and a real fit that records the soup and predicts with it."""

import pytest
import torch

from conftest import fast_flags, run_cli, summary
from ftkit.training.averaging import greedy_soup, keep_snapshot, snapshot_path


def model_at(value: float) -> torch.nn.Module:
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(value)
        net.bias.fill_(value)
    return net


def test_only_the_top_snapshots_are_kept_best_first(tmp_path):
    kept = []
    for step, value in [(10, 0.5), (20, 0.7), (30, 0.6), (40, 0.9)]:
        kept = keep_snapshot(model_at(step), tmp_path, kept, step, value, "accuracy", top=2)
    assert [e["step"] for e in kept] == [40, 20]
    assert sorted(p.name for p in tmp_path.glob("snapshot-*")) == ["snapshot-000020.safetensors",
                                                                    "snapshot-000040.safetensors"]
    kept_loss = []
    for step, value in [(1, 0.3), (2, 0.1), (3, 0.2)]:  # a loss: lower is better
        kept_loss = keep_snapshot(model_at(step), tmp_path / "loss", kept_loss, step, value, "loss", top=2)
    assert [e["step"] for e in kept_loss] == [2, 3]


def test_greedy_soup_keeps_a_member_only_while_the_average_scores_as_well(tmp_path):
    """Snapshots hold weights 1, 3 and 11; validation rewards weights near 2: the soup of 1 and 3
    (mean 2) beats 1 alone, adding 11 (mean 5) would not, so the model ends at 2."""
    kept = []
    for step, w in [(1, 1.0), (2, 3.0), (3, 11.0)]:
        kept = keep_snapshot(model_at(w), tmp_path, kept, step, -abs(w - 2) + 0.0 * step, "accuracy", top=3)
    assert [e["step"] for e in kept] == [1, 2, 3]  # 1 and 3 tie at -1: the earlier first
    net = model_at(0.0)

    def score(model):
        return -abs(float(model.weight[0, 0].detach()) - 2.0)

    record = greedy_soup(net, tmp_path, kept, "accuracy", score)
    assert record["used"] and record["members"] == [1, 2]
    assert record["validation"] == {"best_single": -1.0, "soup": 0.0}
    assert [t["step"] for t in record["tried"]] == [2, 3]
    assert torch.allclose(net.weight, torch.full((1, 2), 2.0)) and float(net.bias) == pytest.approx(2.0)


def test_a_soup_that_scores_worse_is_not_used(tmp_path):
    kept = []
    for step, w in [(1, 2.0), (2, 5.0)]:
        kept = keep_snapshot(model_at(w), tmp_path, kept, step, -abs(w - 2), "accuracy", top=3)
    net = model_at(0.0)
    record = greedy_soup(net, tmp_path, kept, "accuracy", lambda m: -abs(float(m.weight[0, 0].detach()) - 2.0))
    assert not record["used"] and record["members"] == [1]
    assert torch.allclose(net.weight, torch.full((1, 2), 2.0))  # the best snapshot's weights
    snapshot_path(tmp_path, 1).unlink()
    assert greedy_soup(net, tmp_path, kept, "accuracy", lambda m: 0.0)["used"] is False  # one left: no soup


def test_fit_with_a_soup_records_it_and_predicts_with_its_weights(tiny_model, sentiment, tmp_path):
    import ftkit

    out = tmp_path / "soup"
    result = run_cli(*fast_flags(tiny_model, sentiment, out, "--set", "train.average=greedy-soup",
                                 "--set", "train.eval_every=8"))
    assert result.returncode == 0, result.stderr
    s = summary(out)
    avg = s["average"]
    assert avg["method"] == "greedy-soup" and avg["members"][0] == s["best"]["step"]
    assert len(avg["tried"]) >= 1 and avg["validation"]["best_single"] == s["best"]["value"]
    if avg["used"]:
        assert avg["validation"]["soup"] >= avg["validation"]["best_single"]
        assert s["metrics"]["validation"]["accuracy"] == pytest.approx(avg["validation"]["soup"], abs=0.05)  # final eval in fp32
    assert not (out / "checkpoints").exists()  # snapshots go with the checkpoints
    assert ftkit.load(out).predict(["a good film"])[0]["label"] in ("neg", "pos")


def test_unknown_average_method_names_the_flag(tiny_model, sentiment, tmp_path):
    result = run_cli(*fast_flags(tiny_model, sentiment, tmp_path / "x", "--set", "train.average=ema"))
    assert result.returncode == 2 and "train.average" in result.stderr
