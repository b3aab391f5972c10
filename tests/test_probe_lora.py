"""Linear probe (feature cache), LP-FT, LoRA (adapter saved, reloaded, merged on export),
per-strategy default learning rates and frozen BatchNorm."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

import ftkit
from conftest import build_tiny_bert, run_cli, sentiment_rows, write_csv
from ftkit.runs import fit as fit_module
from ftkit.training.loop import train_mode


def fit(model, data, out, strategy, **options):
    settings = {"epochs": 1, "batch_size": 16, "lr": 3e-3, **options}
    overrides = {"train.threads": 1, **settings.pop("overrides", {})}
    return ftkit.fit(model=str(model), train=str(data["train"]), test=str(data["test"]), strategy=strategy,
                     out=str(out), quiet=True, overrides=overrides, **settings)


def cache_use(run) -> dict:
    return {name: rec["cache"] for name, rec in run.summary["probe"]["splits"].items()}


def test_feature_cache_is_reused_and_invalidated(tiny_model, sentiment, tmp_path, monkeypatch):
    monkeypatch.setenv("FTKIT_CACHE_DIR", str(tmp_path / "cache"))
    first = fit(tiny_model, sentiment, tmp_path / "a", "linear-probe")
    assert set(cache_use(first).values()) == {"miss"}
    again = fit(tiny_model, sentiment, tmp_path / "b", "linear-probe")
    assert set(cache_use(again).values()) == {"hit"}
    assert again.metrics["test"]["accuracy"] == first.metrics["test"]["accuracy"]
    # A hit only reads the file back: far cheaper than the forward pass of the first run.
    assert again.summary["timing"]["feature_seconds"] <= first.summary["timing"]["feature_seconds"]

    # New training data: computed again.
    other = {"train": write_csv(tmp_path / "train.csv", sentiment_rows(200, 9)), "test": sentiment["test"]}
    changed = fit(tiny_model, other, tmp_path / "c", "linear-probe")
    assert set(cache_use(changed).values()) == {"miss"}
    # Different preprocessing (max length) or a different model: everything is computed again.
    shorter = fit(tiny_model, sentiment, tmp_path / "d", "linear-probe", overrides={"data.max_length": 8})
    assert set(cache_use(shorter).values()) == {"miss"}
    other_model = build_tiny_bert(tmp_path / "other-model", layers=1)
    assert set(cache_use(fit(other_model, sentiment, tmp_path / "e", "linear-probe")).values()) == {"miss"}
    assert len(list((tmp_path / "cache" / "features").glob("*.safetensors"))) == 2 * 4  # train + validation, for each of the 4 distinct inputs


def test_linear_probe_trains_only_the_head(tiny_model, sentiment, tmp_path):
    run = fit(tiny_model, sentiment, tmp_path / "lp", "linear-probe", epochs=3)
    assert run.summary["params"]["trainable"] == 32 * 2 + 2  # classifier weight + bias
    before = load_file(str(tiny_model / "model.safetensors"))
    after = load_file(str(tmp_path / "lp" / "model" / "model.safetensors"))
    assert all(torch.equal(before[k], after["bert." + k]) for k in before)
    assert len(run.summary["history"]) == 3 and run.summary["overfitting"]["verdict"]


def test_lp_ft_second_phase_starts_from_the_probed_head(tiny_model, sentiment, tmp_path, monkeypatch):
    starts = []
    original = fit_module.Loop.run_all

    def spy(loop):
        starts.append({n: p.detach().clone() for n, p in loop.x.model.named_parameters()})
        return original(loop)

    monkeypatch.setattr(fit_module.Loop, "run_all", spy)
    monkeypatch.setattr("ftkit.runs.probe.Loop.run_all", spy)
    run = fit(tiny_model, sentiment, tmp_path / "lpft", "lp-ft", overrides={"strategy.probe_epochs": 2})
    assert len(starts) == 2  # the probe phase (head only), then every layer
    probe_start, full_start = starts
    assert set(probe_start) == {"weight", "bias"}  # the loop trained the head module alone
    head = load_file(str(tmp_path / "lpft" / "probe" / "head.safetensors"))
    assert torch.equal(full_start["classifier.weight"], head["classifier.weight"])
    assert not torch.equal(full_start["classifier.weight"], probe_start["weight"])  # the probe trained it
    phase = run.summary["probe"]
    assert phase["epochs"] == 2 and phase["lr"] == 1e-3 and len(phase["history"]) == 2
    assert not (tmp_path / "lpft" / "probe" / "checkpoints").exists()


@pytest.mark.precision
def test_lp_ft_resume_skips_a_finished_probe_phase(tiny_model, sentiment, tmp_path):
    out = tmp_path / "lpft"
    fit(tiny_model, sentiment, out, "lp-ft", overrides={"strategy.probe_epochs": 1})
    head = load_file(str(out / "probe" / "head.safetensors"))
    done = (out / "probe" / "phase.json").stat().st_mtime_ns
    (out / "summary.json").unlink()  # as if killed in the second phase
    result = run_cli("fit", "--resume", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["probe"]["epochs"] == 1
    assert (out / "probe" / "phase.json").stat().st_mtime_ns == done  # the probe phase was not run again
    assert torch.equal(load_file(str(out / "probe" / "head.safetensors"))["classifier.weight"], head["classifier.weight"])


@pytest.mark.precision
def test_lora_trains_adapters_and_head_and_reloads_identically(tiny_model, sentiment, tmp_path):
    out = tmp_path / "lora"
    run = fit(tiny_model, sentiment, out, "lora", epochs=2,
              overrides={"strategy.rank": 4, "strategy.target_modules": ["query", "key", "value"]})
    files = {p.name for p in (out / "model").iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json"} <= files and "model.safetensors" not in files
    saved = load_file(str(out / "model" / "adapter_model.safetensors"))
    assert any("lora_A" in k for k in saved) and any("classifier" in k for k in saved)  # the head travels along
    assert all("lora_" in k or "classifier" in k for k in saved)
    config = json.loads((out / "model" / "adapter_config.json").read_text())
    assert config["r"] == 4 and sorted(config["target_modules"]) == ["key", "query", "value"]
    assert run.summary["params"]["trainable"] < run.summary["params"]["total"] / 5

    predictions = pd.read_csv(out / "predictions.csv")
    reloaded = ftkit.load(out).predictor.predict_proba(_examples(sentiment["test"]))
    np.testing.assert_allclose(reloaded, predictions[["prob_neg", "prob_pos"]].to_numpy(), atol=1e-6)

    result = run_cli("export", out, "--out", tmp_path / "merged", "--quiet")
    assert result.returncode == 0, result.stderr
    from transformers import AutoModelForSequenceClassification
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    data = ftkit.load(out).predictor.encode(_examples(sentiment["test"]))
    from ftkit.tasks.text_classification import predict_proba
    np.testing.assert_allclose(predict_proba(merged, data, 64, "fp32"), reloaded, atol=1e-5)


def test_lora_settings_are_checked(tiny_model, sentiment, tmp_path):
    result = run_cli("fit", "--model", tiny_model, "--train", sentiment["train"], "--strategy", "lora",
                     "--out", tmp_path / "x", "--set", "strategy.rank=0", "--quiet")
    assert result.returncode == 2 and "strategy.rank" in result.stderr
    result = run_cli("fit", "--model", tiny_model, "--train", sentiment["train"], "--strategy", "lora",
                     "--out", tmp_path / "y", "--set", "strategy.target_modules=[nonexistent]", "--quiet")
    assert result.returncode == 2 and "target_modules" in result.stderr
    assert not (tmp_path / "x").exists()


def test_default_learning_rate_follows_the_strategy(tiny_model, sentiment, tmp_path):
    ftkit.fit(model=str(tiny_model), train=str(sentiment["train"]), strategy="linear-probe",
              out=str(tmp_path / "lp"), epochs=1, quiet=True, overrides={"train.threads": 1})
    config = yaml.safe_load((tmp_path / "lp" / "config.yaml").read_text())["config"]
    assert config["train"]["lr"] == 1e-3
    result = run_cli("strategies")
    assert "linear-probe" in result.stdout and "0.001" in result.stdout


def test_frozen_batchnorm_keeps_its_statistics():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.LazyLinear(2))
    for param in list(model[0].parameters()) + list(model[1].parameters()):
        param.requires_grad_(False)
    train_mode(model)
    assert not model[1].training and model[4].training
    mean = model[1].running_mean.clone()
    model(torch.randn(8, 3, 6, 6))
    assert torch.equal(model[1].running_mean, mean)
    model[1].weight.requires_grad_(True)  # trainable BatchNorm updates its statistics as usual
    train_mode(model)
    assert model[1].training


def _examples(path):
    from ftkit.tasks.text_classification import read_examples
    return read_examples(str(path), "text", "label", False)


def test_standardized_head_folds_back_to_raw_features():
    from ftkit.runs.probe import fold, standardize
    from ftkit.training.features import FeatureData

    rng = np.random.default_rng(0)
    raw = FeatureData((rng.normal(0.3, 0.02, size=(50, 6))).astype(np.float32), np.zeros(50, dtype=np.int64))
    head = torch.nn.Linear(6, 3)
    scaled, (mean, std) = standardize({"train": raw}, head)
    assert abs(scaled["train"].features.std(axis=0).mean() - 1) < 1e-3
    expected = head(torch.from_numpy(scaled["train"].features))
    fold(head, mean, std)
    np.testing.assert_allclose(head(torch.from_numpy(raw.features)).detach(), expected.detach(), atol=1e-4)
