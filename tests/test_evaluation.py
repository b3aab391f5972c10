"""Honest evaluation: bootstrap intervals cover the truth, calibration error and temperature
scaling behave on synthetic predictors, slices find a planted gap, and a tiny run reports all of
it (and its saved model applies the fitted temperature)."""
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from conftest import fast_flags, run_cli, sentiment_rows, summary, write_csv
from ftkit.errors import DataError
from ftkit.evaluation.bootstrap import bootstrap_ci, classification_ci, classification_scorer, ner_ci
from ftkit.evaluation.calibration import apply_temperature, calibration_report, fit_temperature, reliability
from ftkit.evaluation.slices import group_metrics, read_groups
from ftkit.tasks.text_classification import TextExamples
from ftkit.tasks.token_classification import TokenClassification, ner_metrics


def test_bootstrap_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered, repeats = 0, 200
    for seed in range(repeats):
        label_ids = rng.integers(0, 2, 200)
        correct = rng.random(200) < 0.8  # a classifier that is right 80% of the time
        probs = np.eye(2)[np.where(correct, label_ids, 1 - label_ids)]
        low, high = classification_ci(probs, label_ids, 2, n_boot=200, seed=seed)["accuracy"]
        covered += low <= 0.8 <= high
    assert 0.88 <= covered / repeats <= 0.99, covered


def test_bootstrap_scorer_matches_sklearn_and_is_reproducible():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    y, pred = rng.integers(0, 4, 500), rng.integers(0, 4, 500)
    pred[:300] = y[:300]
    point = classification_scorer(y, pred, 4)(np.arange(500))
    assert point["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    a = bootstrap_ci(classification_scorer(y, pred, 4), 500, n_boot=300, seed=3)
    assert a == bootstrap_ci(classification_scorer(y, pred, 4), 500, n_boot=300, seed=3)
    assert a["accuracy"][0] < point["accuracy"] < a["accuracy"][1]


def _synthetic_logits(n: int, seed: int, classes: int = 4):
    """Logits z and labels drawn from softmax(z): softmax(z) is perfectly calibrated."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, (n, classes))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    labels = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z, labels


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_calibrated_predictor_has_near_zero_ece_and_overconfidence_is_fixed_by_temperature():
    z, labels = _synthetic_logits(40000, 0)
    ece, bins = reliability(_softmax(z), labels)
    assert ece < 0.02 and sum(b["count"] for b in bins) == 40000 and len(bins) <= 15
    overconfident = _softmax(3 * z)  # logits three times too large
    assert reliability(overconfident, labels)[0] > 0.1
    z_val, labels_val = _synthetic_logits(5000, 1)
    assert fit_temperature(_softmax(3 * z_val), labels_val) == pytest.approx(3, rel=0.15)
    report, scaled, temperature = calibration_report(overconfident, labels, fit_on=(_softmax(3 * z_val), labels_val))
    assert report["ece"] < 0.03 < report["ece_before"] and report["temperature"] == temperature
    assert (scaled.argmax(axis=1) == overconfident.argmax(axis=1)).all()  # never changes the prediction
    np.testing.assert_allclose(apply_temperature(overconfident, temperature).sum(axis=1), 1, atol=1e-6)


def test_ner_interval_resamples_sentences_and_brackets_the_point_f1():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "O"], ["B-LOC", "O"], ["B-PER", "O"],
            ["O", "O", "B-ORG", "I-ORG"], ["B-LOC", "I-LOC"]] * 3
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG", "O"], ["O", "O"], ["B-PER", "O"],
            ["O", "O", "B-ORG", "O"], ["B-LOC", "I-LOC"]] * 3
    point = ner_metrics(gold, pred, "BIO", 0.0)
    ci = ner_ci(gold, pred, "BIO", n_boot=500)
    assert ci["unit"] == "sentence"
    for metric in ("f1", "precision", "recall"):
        assert ci[metric][0] <= point[metric] <= ci[metric][1]
        assert ci[metric][0] < ci[metric][1]
    # through the task: word probabilities -> tags -> the same interval
    labels = ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    probs = [np.eye(len(labels))[[labels.index(t) for t in p]] for p in pred]
    via_task = TokenClassification().confidence_intervals(SimpleNamespace(tags=gold), probs, labels, 500, 0.95, 0)
    assert via_task == ci


def test_slices_find_the_planted_gap_and_flag_small_groups():
    rng = np.random.default_rng(0)
    groups = ["north"] * 300 + ["south"] * 300 + ["island"] * 5
    rate = {"north": 0.95, "south": 0.6, "island": 0.0}
    label_ids = rng.integers(0, 3, len(groups))
    right = np.array([rng.random() < rate[g] for g in groups])
    probs = np.eye(3)[np.where(right, label_ids, (label_ids + 1) % 3)]
    report = group_metrics(probs, label_ids, groups, "region", min_size=10)
    per = report["per_group"]
    assert per["north"]["n"] == 300 and per["north"]["accuracy"] > 0.9 and per["south"]["accuracy"] < 0.7
    assert per["island"]["too_small"] and not per["south"]["too_small"]
    gap = report["largest_gap"]
    assert (gap["best"], gap["worst"]) == ("north", "south") and gap["gap"] > 0.25  # island is not compared


def test_group_values_follow_the_rows_and_errors_name_the_column(tmp_path):
    table = write_csv(tmp_path / "t.csv", [{"text": f"t{i}", "label": "a", "site": ["x", "y", ""][i % 3]}
                                          for i in range(6)])
    examples = TextExamples([f"t{i}" for i in range(6)], None, str(table), [2, 3, 4, 5, 6, 7]).subset([4, 0, 2])
    assert read_groups(examples, "site") == ["y", "x", "(missing)"]
    with pytest.raises(DataError, match=r"t.csv: no column 'city' \(--group-column\)"):
        read_groups(examples, "city")
    folder = SimpleNamespace(unit="file", source=str(tmp_path / "images"))
    with pytest.raises(DataError, match="a folder of images has no columns"):
        read_groups(folder, "site")


@pytest.fixture(scope="module")
def grouped(tmp_path_factory) -> dict:
    """The sentiment data with a `site` column (the test file: 50 / 25 / 5 rows)."""
    folder = tmp_path_factory.mktemp("grouped")
    train = [{**r, "site": "a" if i % 3 else "b"} for i, r in enumerate(sentiment_rows(240, 1))]
    test = [{**r, "site": "a" if i < 50 else "b" if i < 75 else "c"} for i, r in enumerate(sentiment_rows(80, 2))]
    return {"train": write_csv(folder / "train.csv", train), "test": write_csv(folder / "test.csv", test)}


def test_a_run_reports_intervals_calibration_and_groups_and_predict_applies_the_temperature(
        tiny_model, grouped, tmp_path):
    out = tmp_path / "run"
    result = run_cli(*fast_flags(tiny_model, grouped, out, "--group-column", "site", "--set", "eval.calibrate=true"))
    assert result.returncode == 0, result.stderr
    assert "test: accuracy" in result.stdout and "[" in result.stdout  # the interval is printed
    test = summary(out)["metrics"]["test"]
    ci = test["ci"]
    assert ci["n_boot"] == 1000 and ci["level"] == 0.95 and ci["unit"] == "example"
    for metric in ("accuracy", "macro_f1"):
        assert ci[metric][0] <= test[metric] <= ci[metric][1]
    calibration = test["calibration"]
    assert calibration["temperature"] > 0 and calibration["ece"] >= 0 and calibration["ece_before"] >= 0
    meta = json.loads((out / "model" / "ftkit.json").read_text())
    assert meta["temperature"] == calibration["temperature"]
    groups = test["groups"]
    assert groups["column"] == "site" and {g: v["n"] for g, v in groups["per_group"].items()} == {
        "a": 50, "b": 25, "c": 5}
    assert groups["per_group"]["c"]["too_small"] and {groups["largest_gap"]["best"],
                                                      groups["largest_gap"]["worst"]} == {"a", "b"}
    saved = pd.read_csv(out / "predictions.csv")
    target = tmp_path / "p.csv"
    result = run_cli("predict", out, "--data", grouped["test"], "--out", target)
    assert result.returncode == 0, result.stderr
    again = pd.read_csv(target)
    assert again["predicted"].tolist() == saved["predicted"].tolist()
    np.testing.assert_allclose(again["prob_pos"], saved["prob_pos"], atol=1e-5)


def test_default_run_has_intervals_and_calibration_without_temperature(finished_run):
    test = summary(finished_run)["metrics"]["test"]
    assert test["ci"]["accuracy"][0] <= test["accuracy"] <= test["ci"]["accuracy"][1]
    assert 0 <= test["calibration"]["ece"] <= 1 and test["calibration"]["temperature"] is None
    assert "groups" not in test
    assert json.loads((finished_run / "model" / "ftkit.json").read_text())["temperature"] is None


def test_group_column_and_calibrate_are_refused_where_they_cannot_work(tiny_model, sentiment, ner, images,
                                                                      tmp_path):
    from ftkit.config import build_config
    from ftkit.errors import ConfigError
    from ftkit.evaluation.honest import check_eval
    from ftkit.tasks import get_task

    def check(**values):
        cfg = build_config(values={"model.name": str(tiny_model), **values})
        task = get_task(cfg.task)
        return check_eval(task, cfg, task.prepare_data(cfg))

    with pytest.raises(DataError, match="a folder of images has no columns"):
        check(**{"task": "image-classification", "data.train": str(images["train"]), "data.group_column": "site"})
    with pytest.raises(ConfigError, match="eval.calibrate=true: temperature scaling is for classification"):
        check(**{"task": "token-classification", "data.train": str(ner["train"]), "eval.calibrate": True})
    with pytest.raises(ConfigError, match="eval.calibrate=true fits the temperature on validation data"):
        check(**{"data.train": str(sentiment["train"]), "data.validation_size": 0, "eval.calibrate": True})
    # the real command line: one line, exit 2, no run folder
    result = run_cli(*fast_flags(tiny_model, ner, tmp_path / "ner", "--task", "token-classification",
                                 "--group-column", "site"))
    assert result.returncode == 2 and "not supported for token-classification" in result.stderr
    assert not (tmp_path / "ner").exists()
