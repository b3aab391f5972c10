"""Regularisation options: L2-SP, class weights, label smoothing, dropout override."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import ftkit
from ftkit.config import FitConfig
from ftkit.tasks.common import class_weights
from ftkit.tasks.text_classification import TextClassification, TextEncoded
from ftkit.training.regularize import set_dropout


def body_distance(tiny_model, run_dir) -> float:
    before = load_file(str(tiny_model / "model.safetensors"))
    after = load_file(str(run_dir / "model" / "model.safetensors"))
    return sum(float(((after["bert." + k] - v) ** 2).sum()) for k, v in before.items()
               if "bert." + k in after) ** 0.5


def test_l2sp_ends_closer_to_pretrained_weights(tiny_model, sentiment, tmp_path):
    common = dict(model=str(tiny_model), train=str(sentiment["train"]), test=str(sentiment["test"]),
                  epochs=2, batch_size=8, lr=3e-3, quiet=True)
    plain = ftkit.fit(out=str(tmp_path / "plain"), overrides={"train.threads": 1}, **common)
    pulled = ftkit.fit(out=str(tmp_path / "l2sp"), overrides={"train.threads": 1, "train.l2sp": 1.0}, **common)
    assert body_distance(tiny_model, tmp_path / "l2sp") < 0.8 * body_distance(tiny_model, tmp_path / "plain")
    assert pulled.summary["l2sp"]["distance_to_pretrained"] == pytest.approx(
        body_distance(tiny_model, tmp_path / "l2sp"), rel=1e-3)
    assert "l2sp" not in plain.summary


def test_class_weights_balance_classes():
    w = class_weights(np.array([0, 0, 0, 1]), 2)
    assert torch.allclose(w, torch.tensor([4 / 6, 2.0]))


def test_label_smoothing_and_class_weights_reach_the_loss(tiny_model):
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2).eval()
    data = TextEncoded([np.array([2, 6, 3]), np.array([2, 12, 3, 0])], np.array([0, 1]), 0, n_classes=2)
    batch = data.batch(np.array([0, 1]))
    losses = {}
    for key, train in {"plain": {}, "smooth": {"label_smoothing": 0.3},
                       "weighted": {"class_weights": "auto"}}.items():
        cfg = FitConfig.model_validate({"train": train})
        losses[key] = TextClassification().make_loss(cfg, data)(model, batch).item()
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    expected = torch.nn.functional.cross_entropy(logits, batch["labels"], label_smoothing=0.3).item()
    assert losses["smooth"] == pytest.approx(expected, rel=1e-5)
    assert losses["smooth"] != pytest.approx(losses["plain"])
    assert losses["weighted"] == pytest.approx(losses["plain"], rel=1e-5)  # balanced: weights are 1


def test_dropout_override_reaches_every_dropout(tiny_model):
    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    assert set_dropout(model, 0.3) > 5
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.3}


def test_oversampling_draws_every_class_equally_and_is_reproducible():
    from ftkit.training.batches import balanced_weights, epoch_batches

    labels = np.array([0] * 900 + [1] * 100)
    weights = balanced_weights(labels)
    assert weights[labels == 1].sum() == pytest.approx(0.5) and weights.sum() == pytest.approx(1.0)
    drawn = np.concatenate(epoch_batches(np.ones(1000, dtype=int), 32, 0, 1, False, weights))
    assert len(drawn) == 1000 and 0.42 < (labels[drawn] == 1).mean() < 0.58  # was 0.10 without
    again = np.concatenate(epoch_batches(np.ones(1000, dtype=int), 32, 0, 1, False, weights))
    assert (drawn == again).all()  # a resumed run rebuilds the same epoch


def test_oversample_runs_for_classification_and_is_refused_for_ner(tiny_model, sentiment, ner, tmp_path):
    run = ftkit.fit(model=str(tiny_model), train=str(sentiment["train"]), test=str(sentiment["test"]), epochs=1,
                    batch_size=8, lr=3e-3, quiet=True, out=str(tmp_path / "over"),
                    overrides={"train.threads": 1, "train.oversample": True})
    assert run.summary["hyperparameters"]["oversample"] is True and "accuracy" in run.metrics["test"]
    with pytest.raises(ftkit.FtkitError, match="oversample"):
        ftkit.fit(task="token-classification", model=str(tiny_model), train=str(ner["train"]), epochs=1,
                  quiet=True, out=str(tmp_path / "ner"), overrides={"train.oversample": True})
    assert not (tmp_path / "ner").exists()
