"""Retention (forgetting) measured before and after fine-tuning, and what mitigates it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import ftkit
from conftest import sentiment_rows, write_csv
from ftkit.errors import ConfigError, DataError
from ftkit.evaluation.retention import linear_cka

FLIP = {"pos": "neg", "neg": "pos"}
FAST = ["train.threads=1"]


def summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


# ---------------------------------------------------------------- linear CKA

def test_linear_cka_on_known_cases():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 20))
    rotation, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.5 * x @ rotation) == pytest.approx(1.0)  # rotation and isotropic scale
    assert linear_cka(x, x + 10.0) == pytest.approx(1.0)  # centred: a shift changes nothing
    assert linear_cka(x, rng.normal(size=(300, 20))) < 0.15  # unrelated representations
    assert 0.2 < linear_cka(x, x[:, :10]) < 0.8  # half of the dimensions kept


# ---------------------------------------------------------------- the forgetting case

@pytest.fixture(scope="module")
def forgetting(tmp_path_factory, tiny_model) -> dict:
    """An 'original model' (the tiny BERT fine-tuned on pos/neg, its head made confident), a
    pos/neg reference set, and training data whose labels contradict it (flipped)."""
    folder = tmp_path_factory.mktemp("forgetting")
    train = write_csv(folder / "train.csv", sentiment_rows(160, 1))
    ftkit.fit(model=str(tiny_model), train=str(train), out=str(folder / "orig"), epochs=3, batch_size=8, lr=3e-3,
              quiet=True, overrides=FAST)
    _sharpen_head(folder / "orig" / "model", 10.0)
    flipped = [{"text": r["text"], "label": FLIP[r["label"]]} for r in sentiment_rows(160, 4)]
    return {"original": folder / "orig" / "model", "reference": write_csv(folder / "ref.csv", sentiment_rows(100, 3)),
            "flipped": write_csv(folder / "flipped.csv", flipped), "unlabelled": _unlabelled(folder)}


def _sharpen_head(model: Path, factor: float) -> None:
    """Scale the classifier: a tiny model trained for seconds is right but unsure (p ~ 0.55);
    a real original model is confident, which is what distillation (rehearsal) preserves."""
    from safetensors.torch import load_file, save_file

    weights = load_file(str(model / "model.safetensors"))
    for key in ("classifier.weight", "classifier.bias"):
        weights[key] = weights[key] * factor
    save_file(weights, str(model / "model.safetensors"), metadata={"format": "pt"})


def _unlabelled(folder: Path) -> Path:
    return write_csv(folder / "unlabelled.csv", [{"text": r["text"]} for r in sentiment_rows(60, 5)])


def further(forgetting: dict, out: Path, *sets: str, reference: str = "reference"):
    """Fine-tune the original model on the contradicting labels (lr 1e-3, 3 epochs, seed 0)."""
    ftkit.fit(model=str(forgetting["original"]), train=str(forgetting["flipped"]), out=str(out),
              reference_data=str(forgetting[reference]), epochs=3, batch_size=8, lr=1e-3, quiet=True,
              overrides=[*FAST, *sets])
    return summary(out)["retention"]


@pytest.fixture(scope="module")
def unmitigated(forgetting, tmp_path_factory) -> dict:
    return further(forgetting, tmp_path_factory.mktemp("plain") / "run")


def test_contradicting_labels_make_the_model_forget_its_original_task(unmitigated, forgetting):
    r = unmitigated
    assert r["kind"] == "original-head" and r["labelled"] and r["measure"] == "original-task accuracy"
    assert r["n"] == 100 and r["reference"] == str(forgetting["reference"]) and r["rehearsal"] == 0.0
    assert r["before"] >= 0.9  # the original head on the untouched body does the original task
    assert r["after"] < r["before"] - 0.3 and r["retained_pct"] < 60
    assert r["retained_pct"] == pytest.approx(r["after"] / r["before"] * 100, abs=0.1)
    assert r["verdict"].startswith("forgot") and "retention.rehearsal" in r["verdict"]
    assert 0 <= r["cka"] <= 1 and 0 <= r["agreement"] <= 1


@pytest.mark.parametrize("sets", [("train.l2sp=10",), ("retention.rehearsal=0.5", "retention.rehearsal_weight=5")],
                         ids=["l2sp", "rehearsal"])
def test_l2sp_and_rehearsal_reduce_the_drop(sets, unmitigated, forgetting, tmp_path):
    r = further(forgetting, tmp_path / "run", *sets)
    assert r["before"] == unmitigated["before"]  # the same snapshot of the same original model
    assert r["retained_pct"] > unmitigated["retained_pct"] + 20
    assert (tmp_path / "run" / "retention_before.npz").is_file()


def test_unlabelled_reference_measures_prediction_agreement(forgetting, tmp_path):
    r = further(forgetting, tmp_path / "run", reference="unlabelled")
    assert not r["labelled"] and r["measure"] == "prediction agreement" and r["n"] == 60
    assert r["before"] == 1.0 and r["after"] == r["agreement"] < 0.8


def test_encoder_reports_probe_accuracy_before_and_after_and_cka(tiny_model, sentiment, forgetting, tmp_path):
    """A bare encoder (no head of its own): linear-probe accuracy on the labelled references."""
    out = tmp_path / "run"
    ftkit.fit(model=str(tiny_model), train=str(sentiment["train"]), out=str(out), epochs=1, batch_size=16, lr=3e-3,
              reference_data=str(forgetting["reference"]), quiet=True,
              overrides=[*FAST, "retention.probe_folds=3", "retention.rehearsal=0.25"])
    r = summary(out)["retention"]
    assert r["kind"] == "encoder" and r["measure"] == "linear-probe accuracy" and r["rehearsal"] == 0.25
    assert 0.4 <= r["before"] <= 1 and 0.4 <= r["after"] <= 1 and 0 < r["cka"] <= 1
    assert "agreement" not in r and isinstance(r["verdict"], str)


# ---------------------------------------------------------------- errors

def test_unknown_reference_label_is_named_with_its_line(forgetting, tmp_path):
    rows = sentiment_rows(10, 6)
    rows[3]["label"] = "meh"
    ref = write_csv(tmp_path / "ref.csv", rows)
    with pytest.raises(DataError, match=r"ref.csv line 5: label 'meh' is not a class of the original head"):
        ftkit.fit(model=str(forgetting["original"]), train=str(forgetting["flipped"]), out=str(tmp_path / "x"),
                  reference_data=str(ref), quiet=True, overrides=FAST)
    assert not (tmp_path / "x").exists()


def test_rehearsal_without_reference_data_names_the_flags(tiny_model, sentiment, tmp_path):
    with pytest.raises(ConfigError, match=r"retention.rehearsal=0.2.*--reference-data"):
        ftkit.fit(model=str(tiny_model), train=str(sentiment["train"]), out=str(tmp_path / "x"), quiet=True,
                  overrides=[*FAST, "retention.rehearsal=0.2"])


def test_missing_reference_file_is_refused_by_the_cli(tiny_model, sentiment, tmp_path):
    from typer.testing import CliRunner

    from ftkit.cli import app

    result = CliRunner().invoke(app, ["fit", "--model", str(tiny_model), "--train", str(sentiment["train"]),
                                      "--out", str(tmp_path / "x"), "--reference-data", str(tmp_path / "nope.csv"),
                                      "--quiet", "--set", "train.threads=1"])
    assert isinstance(result.exception, DataError)  # main() prints it on one line, exit status 2
    assert "--reference-data" in str(result.exception) and "nope.csv: no such file" in str(result.exception)
    assert not (tmp_path / "x").exists()


def test_token_classification_is_refused(tiny_model, ner, tmp_path):
    with pytest.raises(ConfigError, match="retention is measured for text-classification"):
        ftkit.fit(task="token-classification", model=str(tiny_model), train=str(ner["train"]),
                  out=str(tmp_path / "x"), reference_data=str(ner["test"]), quiet=True, overrides=FAST)


# ---------------------------------------------------------------- images and resume

def test_image_model_keeps_its_original_head_for_agreement(tiny_resnet, images, tmp_path):
    """A Hugging Face image classifier's 5-class head (Flatten + Linear) is applied to the
    fine-tuned body; an unlabelled image folder measures agreement."""
    folder = tmp_path / "ref"
    folder.mkdir()
    for path in sorted(Path(images["test"]).rglob("*.png"))[:12]:
        shutil.copy(path, folder / path.name)
    ftkit.fit(task="image-classification", model=str(tiny_resnet), train=str(images["train"]), out=str(tmp_path / "r"),
              reference_data=str(folder), epochs=1, batch_size=16, lr=3e-3, quiet=True,
              overrides=[*FAST, "data.image_size=20"])
    r = summary(tmp_path / "r")["retention"]
    assert r["kind"] == "original-head" and r["measure"] == "prediction agreement" and r["n"] == len(
        list(folder.iterdir()))
    assert r["before"] == 1.0 and 0 <= r["after"] <= 1
