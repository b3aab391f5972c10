"""End to end on a tiny random BERT: run folder contract, reload parity, determinism, resume."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

import ftkit
from conftest import fast_flags, run_cli, sentiment_rows, summary, write_csv


def test_run_folder_contract(finished_run):
    s = summary(finished_run)
    for key in ("task", "model", "strategy", "metrics", "timing", "params", "peak_memory_mb", "seed"):
        assert key in s
    test = s["metrics"]["test"]
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix"):
        assert key in test
    assert test["accuracy"] > 0.9, test  # separable synthetic data: the tiny model must learn it
    assert np.array(test["confusion_matrix"]).sum() == 80
    assert set(test["per_class"]) == {"neg", "pos"}
    assert "validation" in s["metrics"]  # split from train when no --validation
    assert s["timing"]["train_seconds"] > 0 and s["timing"]["samples_per_second"] > 0
    assert s["params"]["trainable"] == s["params"]["total"] > 0
    assert not (finished_run / "checkpoints").exists()  # resumable state goes once the run is done
    config = (finished_run / "config.yaml").read_text()
    assert "versions:" in config and "torch:" in config and "command:" in config
    records = [json.loads(line) for line in (finished_run / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in records} == {"train", "validation", "train_eval"}
    over = s["overfitting"]
    assert over["metric"] == "accuracy" and over["verdict"]
    assert over["best"]["gap"] == pytest.approx(over["best"]["train_accuracy"] - over["best"]["validation_accuracy"],
                                                abs=1e-4)
    splits = json.loads((finished_run / "splits.json").read_text())
    assert splits["validation_split"]["from"] == "train"
    assert set(splits["train"]["lines"]).isdisjoint(splits["validation"]["lines"])
    assert {p.name for p in (finished_run / "model").iterdir()} >= {"config.json", "ftkit.json", "model.safetensors",
                                                                    "README.md"}  # README.md: the model card
    assert not list((finished_run / "model").glob("*.bin"))  # never pickle


def test_saved_model_reloads_with_plain_transformers(finished_run):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(finished_run / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(finished_run / "model")
    preds = pd.read_csv(finished_run / "predictions.csv")
    with torch.no_grad():
        batch = tokenizer(preds["text"].tolist(), padding=True, return_tensors="pt")
        probs = torch.softmax(model(**batch).logits, -1).numpy()
    labels = [model.config.id2label[i] for i in probs.argmax(1)]
    assert labels == preds["predicted"].tolist()
    np.testing.assert_allclose(probs[:, model.config.label2id["pos"]], preds["prob_pos"], atol=1e-5)


def test_python_api_load_predict_and_eval_cli(finished_run, sentiment, tmp_path):
    run = ftkit.load(finished_run)
    out = run.predict(["a great superb film", "awful boring plot"])
    assert [o["label"] for o in out] == ["pos", "neg"]
    assert abs(sum(out[0]["probabilities"].values()) - 1) < 1e-5
    result = run_cli("eval", finished_run, "--data", sentiment["test"])
    assert result.returncode == 0, result.stderr
    saved = json.loads((finished_run / "evaluations" / "test.json").read_text())
    assert saved["metrics"]["accuracy"] == pytest.approx(run.metrics["test"]["accuracy"])
    target = tmp_path / "p.jsonl"
    result = run_cli("predict", finished_run, "--data", sentiment["test"], "--out", target)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(x) for x in target.read_text().splitlines()]
    assert len(rows) == 80 and {"text", "label", "predicted", "score", "prob_pos"} <= set(rows[0])
    result = run_cli("predict", finished_run, "--text", "great fun", "--text", "dull")
    assert [json.loads(x)["predicted"] for x in result.stdout.splitlines()] == ["pos", "neg"]


@pytest.mark.precision
def test_same_seed_same_metrics_integer_labels_jsonl(tmp_path, tiny_model):
    rows = [{"text": r["text"], "label": int(r["label"] == "pos")} for r in sentiment_rows(200, 5)]
    data = tmp_path / "d.jsonl"
    pd.DataFrame(rows).to_json(data, orient="records", lines=True)
    runs = []
    for name in ("a", "b"):
        run = ftkit.fit(model=str(tiny_model), train=str(data), out=str(tmp_path / name), epochs=2,
                        batch_size=8, lr=3e-3, quiet=True, overrides={"train.threads": 1})
        runs.append(run)
    assert runs[0].summary["labels"] == ["0", "1"]
    assert runs[0].metrics == runs[1].metrics
    a = pd.read_csv(tmp_path / "a" / "predictions.csv")
    b = pd.read_csv(tmp_path / "b" / "predictions.csv")
    assert a.equals(b)


@pytest.mark.precision
def test_kill_mid_epoch_then_resume_matches_uninterrupted(tmp_path, tiny_model):
    data = {"train": write_csv(tmp_path / "train.csv", sentiment_rows(1600, 7)),
            "test": write_csv(tmp_path / "test.csv", sentiment_rows(100, 8))}
    flags = ["--set", "train.checkpoint_every=20", "--epochs", "3"]
    straight = tmp_path / "straight"
    assert run_cli(*fast_flags(tiny_model, data, straight, *flags)).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ftkit.cli", *fast_flags(tiny_model, data, killed, *flags)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = killed / "checkpoints" / "latest.json"
    deadline = time.time() + 120
    while not pointer.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run finished before it could be killed"
    step = int(json.loads(pointer.read_text())["dir"].split("-")[1])
    assert step % 180 != 0, "killed at an epoch boundary, not mid-epoch"  # 1440 rows / 8 = 180 steps

    result = run_cli("fit", "--out", killed, "--resume", "--quiet")
    assert result.returncode == 0, result.stderr
    assert summary(killed)["resumed"] is True
    assert summary(killed)["metrics"]["test"] == summary(straight)["metrics"]["test"]
    assert summary(killed)["timing"]["steps"] == summary(straight)["timing"]["steps"]
    a = pd.read_csv(straight / "predictions.csv")
    b = pd.read_csv(killed / "predictions.csv")
    np.testing.assert_array_equal(a["prob_pos"].to_numpy(), b["prob_pos"].to_numpy())


def test_drop_empty_skips_and_counts(tmp_path, tiny_model):
    rows = sentiment_rows(60, 3) + [{"text": "", "label": "pos"}]
    path = write_csv(tmp_path / "d.csv", rows)
    run = ftkit.fit(model=str(tiny_model), train=str(path), out=str(tmp_path / "r"), epochs=1, quiet=True,
                    overrides={"data.drop_empty": True})
    assert sum(run.summary["data"].values()) == 60


@pytest.mark.precision
def test_early_stopping_and_best_weights_restored(tmp_path, tiny_model, sentiment):
    run = ftkit.fit(model=str(tiny_model), train=str(sentiment["train"]), test=str(sentiment["test"]),
                    out=str(tmp_path / "r"), epochs=30, batch_size=8, lr=3e-3, quiet=True,
                    overrides={"train.patience": 2, "train.metric": "loss", "train.threads": 1,
                               "train.precision": "fp32"})
    s = run.summary
    assert s["early_stopping"]["stopped"] is True
    assert s["timing"]["steps"] < 30 * 27
    best = min(h["validation"]["loss"] for h in s["history"])
    assert s["best"]["value"] == pytest.approx(best)
    assert s["metrics"]["validation"]["loss"] == pytest.approx(best, abs=1e-4)
    assert s["overfitting"]["early_stopping_fired"] is True
    assert s["overfitting"]["best"]["validation_loss"] == pytest.approx(best)


def test_gradient_accumulation_counts_optimizer_steps(tmp_path, tiny_model, sentiment):
    run = ftkit.fit(model=str(tiny_model), train=str(sentiment["train"]), test=str(sentiment["test"]),
                    out=str(tmp_path / "r"), epochs=2, batch_size=4, quiet=True,
                    overrides={"train.grad_accum": 3, "train.schedule": "cosine", "train.threads": 1})
    batches = -(-216 // 4)  # 240 rows less a 10% validation split
    assert run.summary["timing"]["steps"] == 2 * -(-batches // 3)
    assert run.summary["timing"]["samples"] == 2 * 216


def test_time_limit_and_caller_stop_end_the_run_cleanly(tmp_path, tiny_model, sentiment):
    """train.max_seconds stops training (its last steps still scored); an on_validate hook that
    returns True stops it too (tuning prunes this way); trials skip the test split and the model."""
    from ftkit.api import make_config
    from ftkit.runs.fit import fit_run

    common = dict(model=str(tiny_model), train=str(sentiment["train"]), test=str(sentiment["test"]),
                  epochs=50, batch_size=8, lr=3e-3)
    cfg = make_config(None, {**common, "out": str(tmp_path / "timed")},
                      ["train.max_seconds=1.5", "train.patience=null", "train.threads=1"])
    s = summary(fit_run(cfg, quiet=True))
    assert s["stopped"] == {"early": True, "reason": "time limit"}
    assert s["timing"]["steps"] < 50 * 27 and s["history"][-1]["step"] == s["timing"]["steps"]
    assert not s["early_stopping"]["stopped"] and "test" in s["metrics"]

    seen = []
    cfg = make_config(None, {**common, "out": str(tmp_path / "pruned")}, ["train.threads=1"])
    path = fit_run(cfg, quiet=True, on_validate=lambda record: seen.append(record) or len(seen) == 2,
                   score_test=False, save_model=False)
    s = summary(path)
    assert s["stopped"]["reason"] == "pruned" and len(s["history"]) == 2 == len(seen)
    assert "validation" in seen[0] and "test" not in s["metrics"] and not (path / "model").exists()
    assert s["outputs"] == {"model": False, "test_scored": False}


def test_train_rows_samples_train_and_keeps_the_held_out_splits(tmp_path, tiny_model, sentiment):
    common = dict(model=str(tiny_model), train=str(sentiment["train"]), epochs=1, batch_size=8, quiet=True)
    full = ftkit.fit(out=str(tmp_path / "all"), **common)
    part = ftkit.fit(out=str(tmp_path / "part"), overrides=["data.train_rows=60"], **common)
    assert part.summary["data"]["train"] == 60 and full.summary["data"]["train"] > 150
    assert part.summary["data"]["validation"] == full.summary["data"]["validation"]
    splits = json.loads((tmp_path / "part" / "splits.json").read_text())
    assert len(splits["train"]["lines"]) == 60 and splits["train_rows"]["stratified"]
    held = set(splits["validation"]["lines"]) | set(splits["test"]["lines"])
    assert not held & set(splits["train"]["lines"])
