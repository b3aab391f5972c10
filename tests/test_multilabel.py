"""Multi-label (a set of labels per example): label sets read from a delimited string or a JSON
list, iterative stratification, BCE heads, thresholds tuned on validation and saved with the model,
the metrics, predict = ftkit.load, and the bad-input lines."""
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ftkit
from conftest import FILLER, NEGATIVE, POSITIVE, run_cli, summary, write_csv
from ftkit.data.splits import iterative_split
from ftkit.evaluation.multilabel_metrics import LabelScores, multilabel_ci, multilabel_metrics, tune_thresholds

KINDS = {"pos": POSITIVE, "neg": NEGATIVE, "calm": ["neutral", "ok"]}


def tagged_rows(n: int, seed: int) -> list[dict]:
    """Each text mentions words of one to three kinds; its labels are exactly those kinds."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        kinds = sorted(rng.sample(sorted(KINDS), rng.choice([1, 1, 2, 3])))
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 7))]
        for kind in kinds:
            words.insert(rng.randrange(len(words) + 1), rng.choice(KINDS[kind]))
        rows.append({"text": " ".join(words), "label": "|".join(kinds)})
    return rows


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tagged")
    return {"train": write_csv(folder / "train.csv", tagged_rows(240, 1)),
            "test": write_csv(folder / "test.csv", tagged_rows(80, 2))}


def fit_flags(model, data, out, *extra):
    return ["fit", "--model", str(model), "--train", str(data["train"]), "--test", str(data["test"]),
            "--label-sep", "|", "--out", str(out), "--epochs", "6", "--batch-size", "8", "--lr", "3e-3",
            "--quiet", "--set", "train.threads=1", "--set", "eval.bootstrap=200", *extra]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory, tiny_model, tagged):
    out = tmp_path_factory.mktemp("runs") / "multilabel"
    result = run_cli(*fit_flags(tiny_model, tagged, out))
    assert result.returncode == 0, result.stderr
    return out


def test_text_multilabel_fit_metrics_thresholds_and_predict(text_run, tagged):
    s = summary(text_run)
    assert s["task"] == "text-multilabel" and s["best"]["metric"] == "micro_f1"
    test = s["metrics"]["test"]
    for key in ("micro_f1", "macro_f1", "subset_accuracy", "mean_ap", "per_label", "ci"):
        assert key in test
    assert test["micro_f1"] > 0.8, test  # the kinds are word lists: a tiny model learns them
    assert set(test["per_label"]) == {"calm", "neg", "pos"}
    low, high = test["ci"]["micro_f1"]
    assert low <= test["micro_f1"] <= high
    meta = json.loads((text_run / "model" / "ftkit.json").read_text())
    assert len(meta["thresholds"]) == 3 and all(0 < t < 1 for t in meta["thresholds"])
    assert test["thresholds"] == pytest.approx(meta["thresholds"], abs=1e-4)
    # predict (CLI) = ftkit.load(run).predict = predictions.csv: labels at or above their thresholds
    texts = pd.read_csv(tagged["test"])["text"].tolist()[:12]
    loaded = ftkit.load(text_run).predict(texts)
    saved = pd.read_csv(text_run / "predictions.csv").head(12)
    for got, want, (_, row) in zip(loaded, saved["predicted"].fillna(""), saved.iterrows()):
        assert "|".join(sorted(got["labels"])) == want
        for j, name in enumerate(meta["labels"]):
            assert (got["probabilities"][name] >= meta["thresholds"][j]) == (name in got["labels"])
            assert got["probabilities"][name] == pytest.approx(row[f"prob_{name}"], abs=1e-5)
        assert set(got["scores"]) == set(got["labels"])
    out = text_run.parent / "pred.csv"
    result = run_cli("predict", str(text_run), "--data", str(tagged["test"]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(out)
    assert frame["predicted"].fillna("").head(12).tolist() == saved["predicted"].fillna("").tolist()


def test_saved_model_loads_in_plain_transformers_with_sigmoid(text_run):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(text_run / "model").eval()
    assert model.config.problem_type == "multi_label_classification"
    tokenizer = AutoTokenizer.from_pretrained(text_run / "model")
    preds = pd.read_csv(text_run / "predictions.csv").head(8)
    with torch.no_grad():
        probs = torch.sigmoid(model(**tokenizer(preds["text"].tolist(), padding=True, return_tensors="pt")).logits)
    np.testing.assert_allclose(probs[:, model.config.label2id["pos"]].numpy(), preds["prob_pos"], atol=1e-5)


def test_report_and_eval_read_the_multilabel_run(text_run, tagged):
    assert (text_run / "report.html").is_file() and "micro_f1" in (text_run / "report.html").read_text()
    result = run_cli("eval", str(text_run), "--data", str(tagged["test"]))
    assert result.returncode == 0, result.stderr
    assert "micro_f1" in result.stdout


def test_json_list_labels_and_class_weights(tmp_path, tiny_model):
    rows = tagged_rows(120, 3)
    with open(tmp_path / "train.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps({"text": r["text"], "label": r["label"].split("|")}) + "\n")
    result = run_cli("fit", "--task", "text-multilabel", "--model", str(tiny_model), "--train",
                     str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "run"), "--epochs", "1", "--quiet",
                     "--set", "train.class_weights=auto", "--set", "train.threads=1", "--set", "eval.bootstrap=0")
    assert result.returncode == 0, result.stderr
    assert summary(tmp_path / "run")["labels"] == ["calm", "neg", "pos"]


@pytest.mark.parametrize("cells, expect", [
    (["a|b", "", "b"], "line 3: empty label set in column 'label'"),
    (["a|b", "b", '["a", ["x"]]'], "line 4: column 'label' holds"),
])
def test_bad_label_sets_name_the_row(tmp_path, tiny_model, cells, expect):
    rows = [{"text": f"good film {i}", "label": c} for i, c in enumerate(cells)] * 1
    path = write_csv(tmp_path / "train.csv", rows)
    result = run_cli("fit", "--model", str(tiny_model), "--train", str(path), "--label-sep", "|",
                     "--out", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 2
    assert expect in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run").exists()


def test_unknown_label_in_test_names_the_row(tmp_path, tiny_model, tagged):
    test = write_csv(tmp_path / "test.csv", [{"text": "good film", "label": "pos"}, {"text": "ok", "label": "calm|odd"}])
    result = run_cli("fit", "--model", str(tiny_model), "--train", str(tagged["train"]), "--test", str(test),
                     "--label-sep", "|", "--out", str(tmp_path / "run"), "--quiet")
    assert result.returncode == 2
    assert "test.csv line 3: label 'odd' never occurs in the training data" in result.stderr, result.stderr


def test_empty_label_sets_allowed_when_asked(tmp_path, tiny_model):
    rows = tagged_rows(60, 4) + [{"text": "the movie was a story", "label": ""}] * 10
    path = write_csv(tmp_path / "train.csv", rows)
    result = run_cli("fit", "--model", str(tiny_model), "--train", str(path), "--label-sep", "|", "--epochs", "1",
                     "--out", str(tmp_path / "run"), "--quiet", "--set", "data.allow_empty_labels=true",
                     "--set", "eval.bootstrap=0", "--set", "train.threads=1")
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- parts

def test_iterative_split_keeps_every_label_in_each_part():
    rng = random.Random(0)
    sets = [tuple(sorted(rng.sample("abcdef", rng.randint(1, 3)))) for _ in range(300)]
    sets += [("rare",)] * 4  # 4 rows: one per part of a 4-fold split
    part = iterative_split(sets, [1, 1, 1, 1], seed=0)
    assert all(abs(n - 76) <= 3 for n in np.bincount(part)), np.bincount(part)  # sizes follow labels, roughly
    for label in "abcdef":
        counts = np.bincount([p for p, s in zip(part, sets) if label in s], minlength=4)
        assert counts.max() - counts.min() <= 2, (label, counts)  # proportional, not just present
    assert sorted(p for p, s in zip(part, sets) if s == ("rare",)) == [0, 1, 2, 3]
    assert (iterative_split(sets, [1, 1, 1, 1], seed=0) == part).all()  # seeded


def test_metrics_and_thresholds_against_sklearn():
    from sklearn.metrics import average_precision_score, f1_score

    rng = np.random.default_rng(0)
    y = (rng.random((200, 4)) < 0.3).astype(np.float32)
    probs = np.clip(y * 0.4 + rng.random((200, 4)) * 0.6, 0, 1).astype(np.float32)
    scores = LabelScores(probs, np.full(4, 0.5, dtype=np.float32))
    m = multilabel_metrics(scores, y, list("abcd"))
    pred = probs >= 0.5
    assert m["micro_f1"] == pytest.approx(f1_score(y, pred, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert m["subset_accuracy"] == pytest.approx((pred == y.astype(bool)).all(axis=1).mean())
    assert m["mean_ap"] == pytest.approx(np.mean([average_precision_score(y[:, j], probs[:, j]) for j in range(4)]))
    tuned = tune_thresholds(probs, y, 4)
    def f1(truth, pred):  # binary F1, as sklearn's (checked above through micro/macro)
        return 2 * (truth & pred).sum() / max(truth.sum() + pred.sum(), 1)

    for j in range(4):  # each tuned threshold is at least as good as every observed cut
        truth = y[:, j].astype(bool)
        best = f1(truth, probs[:, j] >= tuned[j])
        assert best >= max(f1(truth, probs[:, j] >= t) for t in np.unique(probs[:, j])) - 1e-9
    ci = multilabel_ci(scores, y, 200, 0.95, 0)
    assert ci["micro_f1"][0] <= m["micro_f1"] <= ci["micro_f1"][1] and ci["unit"] == "example"


def test_doctor_counts_rows_per_label(tmp_path):
    from ftkit.config import validate
    from ftkit.data.doctor import fast_report
    from ftkit.tasks import get_task

    rows = [{"text": f"good film number {i}", "label": "pos|tag" if i % 10 else "rare|pos"} for i in range(100)]
    cfg = validate({"data": {"train": str(write_csv(tmp_path / "train.csv", rows)), "label_sep": "|"}})
    assert cfg.task == "text-multilabel"
    report = fast_report(cfg, get_task(cfg.task).prepare_data(cfg))
    imbalance = report.get("imbalance")
    counts = {d["class"]: d["count"] for d in imbalance.details}
    assert counts["pos"] > counts["tag"] > counts["rare"] >= 1  # rows carrying each label, not label sets
    assert imbalance.severity == "warn" and "smallest 'rare'" in imbalance.message
    assert cfg.train.class_weights == "auto" and "positive weights are on" in imbalance.fix  # multi-label's default
    off = validate({"data": {"train": cfg.data.train, "label_sep": "|"}, "train": {"class_weights": "none"}})
    assert "class_weights=auto" in fast_report(off, get_task(off.task).prepare_data(off)).get("imbalance").fix


@pytest.mark.parametrize("name", __import__("ftkit.strategies", fromlist=["x"]).general_strategies())
def test_every_strategy_trains_a_multilabel_head(name, tiny_model, tmp_path):
    """The strategies (LoRA, LP-FT's cached-feature probe, ...) work with a sigmoid head; the probe
    phase scores with sigmoids too (its validation metrics are multi-label ones)."""
    path = write_csv(tmp_path / "train.csv", tagged_rows(80, 5))
    run = ftkit.fit(model=str(tiny_model), train=str(path), label_sep="|", strategy=name, out=str(tmp_path / name),
                    epochs=1, batch_size=16, lr=3e-3, quiet=True,
                    overrides={"train.threads": 1, "eval.bootstrap": 0})
    s = run.summary
    assert s["task"] == "text-multilabel" and s["strategy"] == name
    assert 0 <= s["metrics"]["test"]["micro_f1"] <= 1
    assert all("micro_f1" in h["validation"] for h in s["history"])
    assert len(run.predict(["good film", "bad ok"])[0]["probabilities"]) == 3


def test_probe_and_scratch_baselines_compare_micro_f1(tiny_model, tmp_path, tagged):
    result = run_cli(*fit_flags(tiny_model, tagged, tmp_path / "run"), "--baseline", "probe", "--baseline", "scratch")
    assert result.returncode == 0, result.stderr
    base = summary(tmp_path / "run")["baselines"]
    assert base["probe"]["metric"] == base["scratch"]["metric"] == "micro_f1"
    assert 0 <= base["probe"]["value"] <= 1 and base["verdict"]


def test_serve_returns_what_load_predicts(text_run):
    from test_serve import serving

    texts = ["good film ok", "bad movie", "the plot"]
    local = ftkit.load(text_run).predict(texts)
    with serving(text_run) as client:
        assert client.get("/info").json()["task"] == "text-multilabel"
        served = client.post("/predict", json={"inputs": texts}).json()["predictions"]
    assert [p["labels"] for p in served] == [p["labels"] for p in local]
    for a, b in zip(served, local):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)


def test_onnx_export_of_a_multilabel_text_model_passes_its_parity_check(text_run, tagged, tmp_path):
    out = tmp_path / "onnx"
    result = run_cli("export", str(text_run), "--format", "onnx", "--out", str(out), "--data", str(tagged["test"]))
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "export.json").read_text())
    assert record["parity"]["max_abs_diff"] <= record["parity"]["tolerance"]
    texts = ["good film ok", "bad movie", "the plot"]
    onnx, torch_pred = ftkit.load(out), ftkit.load(text_run)
    assert json.loads((out / "ftkit.json").read_text())["runtime"] == "onnx"
    got, want = onnx.predict(texts), torch_pred.predict(texts)
    assert [p["labels"] for p in got] == [p["labels"] for p in want]
    for a, b in zip(got, want):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-4)


# ---------------------------------------------------------------- images

def striped_table(folder, n: int, seed: int):
    """20x20 images: stripes in the top half -> "top", in the bottom half -> "bottom" (one or both)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        kinds = [["top"], ["bottom"], ["bottom", "top"]][i % 3]
        image = np.full((20, 20), 128.0)
        stripes = (np.arange(20) // 2 % 2 * 200 + 25)[None, :].repeat(10, axis=0)
        if "top" in kinds:
            image[:10] = stripes
        if "bottom" in kinds:
            image[10:] = stripes
        image = np.clip(image + rng.normal(0, 15, image.shape), 0, 255).astype("uint8")
        Image.fromarray(image).convert("RGB").save(folder / f"{i:03d}.png")
        rows.append({"image": f"{i:03d}.png", "label": json.dumps(kinds) if i % 2 else "|".join(kinds)})
    return write_csv(folder / "labels.csv", rows)


def test_image_multilabel_fit_predict_and_thresholds(tiny_resnet, tmp_path):
    train, test = striped_table(tmp_path / "train", 90, 1), striped_table(tmp_path / "test", 30, 2)
    out = tmp_path / "run"
    result = run_cli("fit", "--task", "image-classification", "--label-sep", "|", "--model", str(tiny_resnet),
                     "--train", str(train), "--test", str(test), "--out", str(out), "--epochs", "4",
                     "--batch-size", "8", "--quiet", "--set", "train.threads=1", "--set", "eval.bootstrap=100",
                     "--set", "data.augment.enabled=false")
    assert result.returncode == 0, result.stderr
    s = summary(out)
    assert s["task"] == "image-multilabel" and s["labels"] == ["bottom", "top"]
    test_metrics = s["metrics"]["test"]
    assert {"micro_f1", "macro_f1", "subset_accuracy", "mean_ap", "ci"} <= set(test_metrics)
    assert test_metrics["micro_f1"] > 0.9, test_metrics  # which half is striped: easy for a convnet
    meta = json.loads((out / "model" / "ftkit.json").read_text())
    assert len(meta["thresholds"]) == 2
    paths = [str(tmp_path / "test" / f"{i:03d}.png") for i in range(6)]
    got = ftkit.load(out).predict(paths)
    saved = pd.read_csv(out / "predictions.csv").head(6)
    assert ["|".join(sorted(p["labels"])) for p in got] == saved["predicted"].fillna("").tolist()
    for p, (_, row) in zip(got, saved.iterrows()):
        assert p["probabilities"]["top"] == pytest.approx(row["prob_top"], abs=1e-5)


def test_image_multilabel_refuses_mixup_and_folders(tiny_resnet, tmp_path, images):
    train = striped_table(tmp_path / "train", 12, 1)
    result = run_cli("fit", "--task", "image-multilabel", "--model", str(tiny_resnet), "--train", str(train),
                     "--out", str(tmp_path / "a"), "--quiet", "--set", "data.augment.mixup=true")
    assert result.returncode == 2 and "data.augment.mixup" in result.stderr
    result = run_cli("fit", "--task", "image-multilabel", "--model", str(tiny_resnet), "--train", str(images["train"]),
                     "--out", str(tmp_path / "b"), "--quiet")
    assert result.returncode == 2 and "multi-label images need a table" in result.stderr, result.stderr


# ---------------------------------------------------------------- outer loops

def test_cv_folds_are_iteratively_stratified_and_tune_maximises_micro_f1(tiny_model, tmp_path):
    path = write_csv(tmp_path / "train.csv", tagged_rows(90, 6))
    common = {"model": str(tiny_model), "train": str(path), "label_sep": "|", "epochs": 1, "batch_size": 16,
              "lr": 3e-3, "quiet": True, "overrides": {"train.threads": 1, "eval.bootstrap": 0}}
    report = ftkit.cv(folds=3, out=tmp_path / "cv", **common)
    assert report["metric"] == "micro_f1" and "micro_f1" in report["test"]
    for run in report["runs"]:
        test_rows = json.loads((Path(run["run_dir"]) / "splits.json").read_text())["test"]
        assert abs(test_rows["n"] - 30) <= 3
        assert set(summary(run["run_dir"])["metrics"]["test"]["per_label"]) == {"calm", "neg", "pos"}
    tuned = ftkit.tune(out=tmp_path / "tune", trials=2, space={"train.lr": {"low": 1e-3, "high": 6e-3, "log": True}},
                       **{k: v for k, v in common.items() if k != "lr"})
    assert tuned["metric"] == "micro_f1" and tuned["direction"] == "maximize", tuned
