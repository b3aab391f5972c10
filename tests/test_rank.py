"""`ftkit rank`: LogME against its closed form, kNN/probe sanity, pretrained above random, and
--confirm-top successive halving through the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ftkit
from ftkit.api import make_config
from ftkit.errors import ConfigError, ModelLoadError
from ftkit.selection.features import candidate_features
from ftkit.selection.halving import agreement
from ftkit.selection.rank import candidate_config
from ftkit.selection.scores import Spectrum, evidence, knn_accuracy, logme, probe_accuracy, transferability
from conftest import run_cli

FAST = {"train.threads": 1, "train.batch_size": 8, "train.lr": 3e-3}


def coded(rng, labels: np.ndarray, noise: float, d: int = 16) -> np.ndarray:
    """(n, d) noisy class codes: a random direction per class plus Gaussian noise."""
    centers = rng.normal(0, 1, (labels.max() + 1, d))
    return centers[labels] + rng.normal(0, noise, (len(labels), d))


def test_logme_prefers_informative_features():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 100)
    clean, noisy = coded(rng, labels, 0.3), coded(rng, labels, 2.0)
    noise = rng.normal(0, 1, (300, 16))
    assert logme(clean, labels) > logme(noisy, labels) > logme(noise, labels)
    assert logme(clean * 1000, labels) == pytest.approx(logme(clean, labels), abs=1e-6)  # scale-free


@pytest.mark.parametrize("n, d", [(120, 8), (20, 40)])  # more rows than dims, and fewer
def test_logme_evidence_is_the_gaussian_marginal_at_its_maximum(n, d):
    """The SVD shortcut equals log N(y; 0, I/beta + F F^T/alpha) evaluated directly, and the
    fixed point is a maximum: moving alpha or beta lowers the evidence."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(1)
    f = rng.normal(0, 1, (n, d))
    y = (f[:, 0] + rng.normal(0, 0.5, n) > 0).astype(float)

    def direct(alpha, beta):
        return multivariate_normal(np.zeros(n), np.eye(n) / beta + f @ f.T / alpha).logpdf(y) / n

    value, alpha, beta = evidence(Spectrum(f), y)
    assert value == pytest.approx(direct(alpha, beta), abs=1e-8)
    for da, db in ((0.8, 1), (1.25, 1), (1, 0.8), (1, 1.25)):
        assert direct(alpha * da, beta * db) < value


def test_knn_and_probe_accuracy_sanity():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 100)
    separable = coded(rng, labels, 0.3)
    assert knn_accuracy(separable, labels) > 0.95 and probe_accuracy(separable, labels) > 0.95
    shuffled = rng.permutation(labels)  # labels unrelated to the features: chance
    assert knn_accuracy(separable, shuffled) < 0.65 and probe_accuracy(separable, shuffled) < 0.65
    scores = transferability(separable, np.append(labels[:-1], 2))  # a one-row class is left out
    assert scores["n"] == 199 and scores["classes"] == 2
    assert set(scores["seconds"]) == {"logme", "knn", "probe"}


def test_rank_puts_pretrained_above_random_init(finished_run, sentiment, tmp_path):
    pretrained = str(finished_run / "model")
    out = tmp_path / "rank.json"
    report = ftkit.rank(models=[f"random:{pretrained}", pretrained], train=str(sentiment["train"]),
                        test=str(sentiment["test"]), overrides=FAST, out=out)
    assert [m["candidate"] for m in report["models"]] == [pretrained, f"random:{pretrained}"]
    best, floor = report["models"]
    assert best["init"] == "pretrained" and floor["init"] == "random"
    for key in ("logme", "knn_accuracy", "probe_accuracy"):
        assert best["scores"][key] > floor["scores"][key], key
    assert json.loads(out.read_text())["models"][0]["rank"] == 1
    # the colleague-facing helper: training rows only, served from the cache the second time
    cfg = candidate_config(make_config(None, {"train": str(sentiment["train"]),
                                                        "test": str(sentiment["test"])}, FAST), pretrained)
    features, labels, info = candidate_features(cfg)
    assert features.shape == (best["n"], info["dim"]) and labels.shape == (best["n"],)
    assert info["cache"] == "hit" and info["init"] == "pretrained"


def test_rank_refuses_token_classification_and_bad_flags(sentiment):
    with pytest.raises(ConfigError, match="one vector per token"):
        candidate_features(make_config(None, {"task": "token-classification"}))
    with pytest.raises(ConfigError, match="--confirm-top 5"):
        ftkit.rank(models=["a", "b"], confirm_top=5, train=str(sentiment["train"]))
    with pytest.raises(ConfigError, match="at least two"):
        ftkit.rank(models=["a"], train=str(sentiment["train"]))
    with pytest.raises(ModelLoadError, match="unknown model 'nope'"):  # before any model runs
        ftkit.rank(models=["minilm-l6", "random:nope"], train=str(sentiment["train"]))


def test_agreement_of_orders():
    assert agreement(["a", "b", "c"], ["a", "b", "c"])["spearman"] == 1.0
    flipped = agreement(["a", "b", "c"], ["c", "b", "a"])
    assert flipped["spearman"] == -1.0 and not flipped["held"] and "did not hold" in flipped["verdict"]


def test_cli_confirm_top_runs_successive_halving(finished_run, sentiment, tmp_path):
    pretrained = str(finished_run / "model")
    out = tmp_path / "rank.json"
    result = run_cli("rank", "--models", f"{pretrained},random:{pretrained}", "--train", sentiment["train"],
                     "--test", sentiment["test"], "--out", out, "--confirm-top", "2", "--batch-size", "8",
                     "--lr", "3e-3", "--set", "train.threads=1", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "LogME" in result.stdout and "ranking held" in result.stdout
    confirm = json.loads(out.read_text())["confirm"]
    assert [r["rung"] for r in confirm["rungs"]] == [0]  # two candidates: one rung, one survivor
    assert confirm["rungs"][0]["kept"] == [pretrained]
    assert confirm["held"] and confirm["top1_agrees"] and confirm["spearman"] == 1.0
    runs = [r["run_dir"] for r in confirm["rungs"][0]["results"]]
    for run in map(Path, runs):
        summary = json.loads((run / "summary.json").read_text())
        assert "test" not in summary["metrics"] and not (run / "model").exists()  # no peeking, no weights
