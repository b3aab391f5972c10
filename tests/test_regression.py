"""Regression (a number per example): numeric targets read and refused row by row, the target
standardised for training and mapped back on output, rmse/mae/r2/spearman/pearson with bootstrap
intervals and the predict-the-mean baseline, the best epoch picked by the lowest rmse, and
predict = ftkit.load = predictions.csv = serve."""
import json
import random

import numpy as np
import pandas as pd
import pytest

import ftkit
from conftest import FILLER, NEGATIVE, POSITIVE, run_cli, summary, write_csv
from ftkit.api import make_config
from ftkit.evaluation.metrics import better
from ftkit.evaluation.overfitting import diagnose
from ftkit.evaluation.regression_metrics import regression_ci, regression_metrics
from ftkit.training.ridge import ALPHAS, fit_ridge


def scored_rows(n: int, seed: int) -> list[dict]:
    """The target is 10 x (positive words - negative words) + 50: a tiny model can count them, and
    the offset and scale make un-standardising visible."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 5))]
        pos, neg = rng.randint(0, 3), rng.randint(0, 3)
        for word in [rng.choice(POSITIVE) for _ in range(pos)] + [rng.choice(NEGATIVE) for _ in range(neg)]:
            words.insert(rng.randrange(len(words) + 1), word)
        rows.append({"text": " ".join(words), "score": 50 + 10 * (pos - neg)})
    return rows


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scored")
    return {"train": write_csv(folder / "train.csv", scored_rows(300, 1)),
            "test": write_csv(folder / "test.csv", scored_rows(80, 2))}


def fit_flags(model, data, out, *extra):
    return ["fit", "--model", str(model), "--train", str(data["train"]), "--test", str(data["test"]),
            "--label-column", "score", "--label-type", "number", "--out", str(out), "--epochs", "8",
            "--batch-size", "8", "--lr", "3e-3", "--quiet", "--set", "train.threads=1",
            "--set", "eval.bootstrap=200", *extra]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, tiny_model, scored):
    out = tmp_path_factory.mktemp("runs") / "regression"
    result = run_cli(*fit_flags(tiny_model, scored, out))
    assert result.returncode == 0, result.stderr
    return out


def test_label_type_number_selects_regression():
    assert make_config(None, {"label_type": "number"}).task == "text-regression"
    assert make_config(None, {}).task == "text-classification"


def test_text_regression_fit_metrics_and_predict(text_run, scored):
    s = summary(text_run)
    assert s["task"] == "text-regression" and s["best"]["metric"] == "rmse"
    test = s["metrics"]["test"]
    for key in ("rmse", "mae", "r2", "spearman", "pearson"):
        low, high = test["ci"][key]
        assert low <= test[key] <= high, (key, test)
    assert test["r2"] > 0.5 and test["spearman"] > 0.7, test
    base = test["mean_baseline"]
    assert base["rmse"] > test["rmse"] and abs(base["r2"]) < 0.1
    meta = json.loads((text_run / "model" / "ftkit.json").read_text())
    train = pd.read_csv(scored["train"])["score"]
    assert 40 < meta["target"]["mean"] < 60 and meta["target"]["std"] > 5  # train's own scale
    assert meta["labels"] == ["score"]
    # predictions come back in the target's units: ftkit.load = predictions.csv = ftkit predict
    saved = pd.read_csv(text_run / "predictions.csv")
    assert list(saved.columns) == ["row", "text", "label", "predicted"]
    texts = saved["text"].tolist()[:10]
    loaded = ftkit.load(text_run).predict(texts)
    assert [set(p) for p in loaded] == [{"value"}] * 10
    assert [p["value"] for p in loaded] == pytest.approx(saved["predicted"].head(10).tolist(), abs=1e-3)
    assert abs(saved["predicted"].mean() - train.mean()) < 3 * train.std()
    out = text_run.parent / "pred.csv"
    result = run_cli("predict", str(text_run), "--data", str(scored["test"]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert frame["predicted"].tolist() == pytest.approx(saved["predicted"].tolist(), abs=1e-3)


def test_plain_transformers_loads_the_regression_head(text_run):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(text_run / "model")
    assert model.config.num_labels == 1 and model.config.problem_type == "regression"


def test_best_epoch_is_the_lowest_rmse(text_run):
    s = summary(text_run)
    history = [json.loads(line) for line in (text_run / "metrics.jsonl").read_text().splitlines()]
    rmse = [h["rmse"] for h in history if h["split"] == "validation"]
    assert len(rmse) >= 2
    assert s["best"]["value"] == pytest.approx(min(rmse), abs=1e-6)
    assert better("rmse", 1.0, 2.0) and not better("rmse", 2.0, 1.0) and better("r2", 0.9, 0.5)


def test_overfitting_gap_of_an_error_metric_is_relative():
    history = [{"epoch": 1, "step": 1, "train": {"rmse": 2.0, "loss": 0.5}, "validation": {"rmse": 4.0, "loss": 0.6}},
               {"epoch": 2, "step": 2, "train": {"rmse": 1.0, "loss": 0.4}, "validation": {"rmse": 5.0, "loss": 0.7}}]
    out = diagnose(history, "rmse", stopped_early=True)
    assert out["best_epoch"] == 1  # lowest validation rmse
    assert out["best"]["gap"] == pytest.approx(0.5)  # train's error half of validation's
    assert out["verdict"].startswith("overfitting") and "50.0% lower (better)" in out["verdict"]
    history[0]["train"]["rmse"] = 3.6  # 10% lower on train: what any fit shows
    assert diagnose(history, "rmse", stopped_early=True)["verdict"].startswith("no sign")


def test_metrics_match_sklearn_and_scipy():
    from scipy.stats import spearmanr
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    pred = y + rng.normal(scale=0.5, size=200)
    m = regression_metrics(pred, y)
    assert m["r2"] == pytest.approx(r2_score(y, pred))
    assert m["spearman"] == pytest.approx(spearmanr(pred, y).statistic)
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)))
    ci = regression_ci(pred, y, 300, 0.95, 0)
    assert ci["rmse"][0] < m["rmse"] < ci["rmse"][1] and ci["unit"] == "example"


@pytest.mark.parametrize("cell, what", [("high", "target 'high' is not a finite number"),
                                        ("", "missing target"), ("inf", "'inf' is not a finite number"),
                                        ("nan", "'nan' is not a finite number")])
def test_bad_target_names_file_line_and_column(tmp_path, tiny_model, cell, what):
    rows = [{"text": f"text {i}", "score": str(i)} for i in range(20)]
    rows[6]["score"] = cell
    train = write_csv(tmp_path / "train.csv", rows)
    result = run_cli("fit", "--model", str(tiny_model), "--train", str(train), "--label-column", "score",
                     "--label-type", "number", "--out", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert f"{train} line 8" in line and what in line and "'score'" in line, line


def test_doctor_reports_the_target_distribution(tmp_path, scored, tiny_model):
    report = ftkit.doctor(train=str(scored["train"]), label_column="score", label_type="number",
                          model=str(tiny_model))
    found = {c["name"]: c for c in report["checks"]}
    assert found["imbalance"]["severity"] == "ok" and "numeric target" in found["imbalance"]["message"]
    assert found["label-noise"]["severity"] == "skipped" and "regression" in found["label-noise"]["message"]


def test_serve_returns_the_loaded_values(text_run):
    from test_serve import serving

    texts = ["good great", "bad awful terrible", "the plot"]
    local = ftkit.load(text_run).predict(texts)
    with serving(text_run) as client:
        info = client.get("/info").json()
        assert info["task"] == "text-regression" and "rmse" in info["metrics"]
        served = client.post("/predict", json={"inputs": texts}).json()["predictions"]
    assert [p["value"] for p in served] == pytest.approx([p["value"] for p in local], abs=1e-4)


def test_onnx_export_predicts_the_same_values(text_run, scored, tmp_path):
    from ftkit.onnxrt.export import export_onnx
    from ftkit.onnxrt.runtime import load_onnx

    out = tmp_path / "onnx"
    out.mkdir()
    record = export_onnx(text_run / "model", out, check_data=scored["test"])
    assert record["parity"]["max_abs_diff"] <= 1e-3
    texts = ["good great", "bad awful", "the plot"]
    got = [p["value"] for p in load_onnx(out).predict(texts)]
    assert got == pytest.approx([p["value"] for p in ftkit.load(text_run).predict(texts)], abs=1e-3)


@pytest.mark.parametrize("strategy", ["linear-probe", "lora", "freeze-bottom"])
def test_strategies_train_a_regression_head(tmp_path, tiny_model, scored, strategy):
    out = tmp_path / strategy
    result = run_cli(*fit_flags(tiny_model, scored, out, "--strategy", strategy, "--epochs", "2"))
    assert result.returncode == 0, result.stderr
    s = summary(out)
    assert s["strategy"] == strategy and np.isfinite(s["metrics"]["test"]["rmse"])
    assert s["metrics"]["test"]["rmse"] < 3 * s["metrics"]["test"]["mean_baseline"]["rmse"]
    texts = ["good great", "bad"]
    assert len(ftkit.load(out).predict(texts)) == 2


def test_ridge_probe_recovers_a_linear_target_and_shrinks_on_noise():
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import LeaveOneOut, cross_val_predict
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20)) * rng.uniform(0.01, 10, 20)  # features on scales 1,000x apart
    y = (x / x.std(0)) @ rng.normal(size=20) + rng.normal(scale=0.3, size=400)
    probe = fit_ridge(x[:300], y[:300])
    assert r2_score(y[300:], probe.predict(x[300:])) > 0.98
    assert min(ALPHAS) <= probe.alpha < 10 and not probe.at_edge
    # its leave-one-out error is the one of 300 explicit refits at that alpha
    loo = cross_val_predict(Ridge(alpha=probe.alpha), StandardScaler().fit_transform(x[:300]), y[:300],
                            cv=LeaveOneOut())
    assert probe.loo_mse == pytest.approx(np.mean((loo - y[:300]) ** 2), rel=1e-6)
    # a target the features know nothing of: leave-one-out picks a strong penalty, predictions ~ the mean
    noise = rng.normal(size=400)
    shrunk = fit_ridge(x[:300], noise[:300])
    assert shrunk.alpha > 100 * probe.alpha and r2_score(noise[300:], shrunk.predict(x[300:])) < 0.05
    assert shrunk.record()["name"] == "ridge" and shrunk.record()["alpha"] == shrunk.alpha


def linear_target_data(folder, tiny_model) -> dict:
    """train/test CSVs whose target is a linear function of the tiny model's frozen features (what
    its head receives) plus a little noise: the ridge probe has the right features to recover it."""
    from ftkit.data.frozen_features import frozen_features
    from ftkit.tasks import get_task

    texts = {"train": write_csv(folder / "train-text.csv", scored_rows(300, 3)),
             "test": write_csv(folder / "test-text.csv", scored_rows(80, 4))}
    cfg = make_config(None, {"model": str(tiny_model), "train": str(texts["train"]), "test": str(texts["test"]),
                             "label_column": "score", "label_type": "number"}, ["data.validation_size=0"])
    task = get_task(cfg.task)
    splits = task.prepare_data(cfg)
    parts = [("train", splits.train), ("test", splits.test)]
    feats, _, _ = frozen_features(cfg, task, splits.labels, parts)
    w = np.random.default_rng(0).normal(size=feats[0].shape[1])
    rng = np.random.default_rng(1)
    out = {}
    for (name, examples), f in zip(parts, feats):
        z = (f.astype(np.float64) - feats[0].mean(0)) / feats[0].std(0) @ w
        out[name] = write_csv(folder / f"{name}.csv", [{"text": t, "score": round(50 + 3 * v + rng.normal(0, 0.3), 4)}
                                                    for t, v in zip(examples.texts, z)])
    return out


def test_probe_baseline_is_a_ridge_on_frozen_features(tmp_path, tiny_model):
    data = linear_target_data(tmp_path, tiny_model)
    out = tmp_path / "with-probe"
    result = run_cli(*fit_flags(tiny_model, data, out, "--epochs", "1", "--baseline", "probe"))
    assert result.returncode == 0, result.stderr
    probe = summary(out / "baselines" / "probe")
    assert probe["strategy"] == "ridge-probe" and probe["method"]["name"] == "ridge"
    assert min(ALPHAS) <= probe["method"]["alpha"] <= max(ALPHAS) and probe["history"] == []
    test = probe["metrics"]["test"]
    assert test["r2"] > 0.95 and test["spearman"] > 0.95, test  # the right features: a linear readout suffices
    assert test["rmse"] < 0.3 * test["mean_baseline"]["rmse"]  # in the target's units, not standard deviations
    low, high = test["ci"]["rmse"]
    assert low <= test["rmse"] <= high
    assert not (out / "baselines" / "probe" / "model").exists()
    rows = pd.read_csv(out / "baselines" / "probe" / "predictions.csv")  # row for row with the fit's
    assert rows["label"].tolist() == pd.read_csv(out / "predictions.csv")["label"].tolist()
    assert regression_metrics(rows["predicted"], rows["label"])["rmse"] == pytest.approx(test["rmse"])
    section = summary(out)["baselines"]
    entry = section["probe"]
    assert entry["metric"] == "rmse" and entry["value"] == pytest.approx(test["rmse"])
    assert entry["method"]["name"] == "ridge" and entry["method"]["alpha"] == probe["method"]["alpha"]
    assert entry["ci"] == test["ci"]["rmse"]
    # the gain is in the target's units (an error lowered), not "points" of a 0..1 score
    assert entry["gain_points"] == pytest.approx(entry["value"] - entry["finetuned_value"], abs=1e-3)
    # predicting the training mean is listed too, read off the fine-tuned run's own metrics
    mean = section["mean"]
    main_test = summary(out)["metrics"]["test"]
    assert mean["value"] == pytest.approx(main_test["mean_baseline"]["rmse"]) and mean["run_dir"] is None
    assert mean["gain_points"] == pytest.approx(mean["value"] - main_test["rmse"], abs=1e-3)
    sentence = section["verdict"]
    assert "points of rmse" not in sentence and "ridge probe" in sentence and "training mean" in sentence


def test_mean_baseline_is_refused_for_classification(tmp_path):
    from ftkit.config import validate
    from ftkit.errors import ConfigError
    from ftkit.runs.baselines import fit_with_baselines

    with pytest.raises(ConfigError, match="--baseline mean.*text-regression"):
        fit_with_baselines(validate({"out": str(tmp_path / "run")}), ["mean"])
    assert not (tmp_path / "run").exists()  # refused before anything ran


@pytest.mark.parametrize("flag, words", [("train.class_weights=auto", "no classes to weigh"),
                                         ("train.label_smoothing=0.1", "no classes to smooth"),
                                         ("train.oversample=true", "no single label per example"),
                                         ("eval.calibrate=true", "calibrat")])
def test_classification_only_settings_are_refused(tmp_path, tiny_model, scored, flag, words):
    result = run_cli(*fit_flags(tiny_model, scored, tmp_path / "run", "--epochs", "1", "--set", flag))
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert flag.split("=")[0] in line and words in line, line


# ---------------------------------------------------------------- image regression

def write_brightness_table(folder, n: int, seed: int):
    """Noisy gray squares; the target is the brightness each was drawn at (0..100)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        level = float(rng.uniform(0, 100))
        pixels = np.clip(40 + 1.6 * level + rng.normal(0, 10, (20, 20)), 0, 255).astype("uint8")
        Image.fromarray(pixels, mode="L").save(folder / f"{i:03d}.png")
        rows.append({"image": f"{i:03d}.png", "brightness": round(level, 3)})
    return write_csv(folder / "labels.csv", rows)


def test_image_regression_fit_predict_and_refusals(tmp_path, tiny_resnet):
    train = write_brightness_table(tmp_path / "train", 120, 1)
    test = write_brightness_table(tmp_path / "test", 40, 2)
    out = tmp_path / "run"
    flags = ["fit", "--task", "image-classification", "--label-type", "number", "--model", str(tiny_resnet),
             "--train", str(train), "--test", str(test), "--label-column", "brightness", "--epochs", "6",
             "--batch-size", "8", "--lr", "3e-3", "--quiet", "--set", "train.threads=1",
             "--set", "eval.bootstrap=100", "--set", "data.augment.enabled=false"]
    result = run_cli(*flags, "--out", str(out), "--baseline", "probe")
    assert result.returncode == 0, result.stderr
    s = summary(out)
    assert s["task"] == "image-regression" and s["best"]["metric"] == "rmse"
    # the ridge probe reads the pooled conv features ((n, c, 1, 1) at the head) as one vector each
    probe = summary(out / "baselines" / "probe")
    assert probe["method"]["name"] == "ridge" and probe["features"]["dim"] > 0
    assert np.isfinite(probe["metrics"]["test"]["rmse"]) and set(s["baselines"]) == {"mean", "probe", "verdict"}
    test_metrics = s["metrics"]["test"]
    assert test_metrics["spearman"] > 0.5 and "ci" in test_metrics, test_metrics
    saved = pd.read_csv(out / "predictions.csv")
    paths = [str(tmp_path / "test" / name) for name in pd.read_csv(test)["image"].head(5)]
    loaded = [p["value"] for p in ftkit.load(out).predict(paths)]
    assert loaded == pytest.approx(saved["predicted"].head(5).tolist(), abs=1e-3)
    mixed = run_cli(*flags, "--out", str(tmp_path / "mixup"), "--set", "data.augment.enabled=true",
                    "--set", "data.augment.mixup=true")
    assert mixed.returncode == 2 and "data.augment.mixup" in mixed.stderr


def test_eval_scores_a_labelled_file_in_the_targets_units(text_run, scored, tmp_path):
    result = run_cli("eval", str(text_run), "--data", str(scored["test"]), "--out", str(tmp_path / "eval.json"))
    assert result.returncode == 0, result.stderr
    got = json.loads((tmp_path / "eval.json").read_text())
    metrics = got.get("metrics", got)
    assert metrics["rmse"] == pytest.approx(summary(text_run)["metrics"]["test"]["rmse"], rel=1e-3)


def test_advise_reports_the_targets_spread(tiny_model, scored, tmp_path):
    """`ftkit advise` (and so `auto`) on a numeric target: its spread, not class counts."""
    advice = ftkit.advise(model=str(tiny_model), train=str(scored["train"]), test=str(scored["test"]),
                          label_column="score", label_type="number", epochs=1, batch_size=8,
                          strategies="full,linear-probe", budget="10m", isolate=False,
                          overrides=["train.threads=1"])
    assert "class_counts" not in advice["data"] and advice["data"]["target"]["std"] > 5
    assert advice["recommendation"]["command"].startswith("ftkit fit --model")


def test_huber_loss_trains_and_an_unknown_loss_names_the_flag(tmp_path, tiny_model, scored):
    out = tmp_path / "huber"
    result = run_cli(*fit_flags(tiny_model, scored, out, "--epochs", "2", "--set", "train.loss=huber"))
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "model" / "ftkit.json").read_text())["loss"] == "huber"
    assert np.isfinite(summary(out)["metrics"]["test"]["rmse"])
    bad = run_cli(*fit_flags(tiny_model, scored, tmp_path / "bad", "--set", "train.loss=l1"))
    assert bad.returncode == 2 and "train.loss" in bad.stderr.strip().splitlines()[-1]
