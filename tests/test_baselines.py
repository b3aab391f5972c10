import pytest
import torch
from conftest import run_cli, summary
from safetensors.torch import load_file

from ftkit.config import validate
from ftkit.errors import ConfigError
from ftkit.runs.baselines import (
    check_names,
    compare_runs,
    derive,
    fit_with_baselines,
    seconds_to_match,
    verdict,
)
from ftkit.runs.rundir import RunDir

KEYS = {"run_dir", "metric", "split", "value", "finetuned_value", "gain_points", "train_seconds",
        "finetuned_train_seconds", "time_ratio", "seconds_to_match"}


def flags(model, data, out, *extra):
    return ["fit", "--model", model, "--train", data["train"], "--test", data["test"], "--out", out,
            "--epochs", "2", "--batch-size", "16", "--lr", "3e-3", "--quiet", "--set", "train.threads=1", *extra]


@pytest.fixture(scope="module")
def with_baselines(tmp_path_factory, tiny_model, sentiment):
    out = tmp_path_factory.mktemp("baselines") / "run"
    result = run_cli(*flags(tiny_model, sentiment, out, "--baseline", "scratch,probe"))
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_baselines_section_has_both_entries_and_a_verdict(with_baselines):
    out, stdout = with_baselines
    section = summary(out)["baselines"]
    assert set(section) == {"scratch", "probe", "verdict"}
    for name in ("scratch", "probe"):
        assert KEYS <= set(section[name])
        entry = section[name]
        assert entry["split"] == "test" and entry["metric"] == "accuracy"
        assert entry["gain_points"] == pytest.approx(100 * (entry["finetuned_value"] - entry["value"]), abs=0.01)
        assert (out / "baselines" / name / "summary.json").is_file()
        assert not (out / "baselines" / name / "model").exists()  # nobody keeps a baseline's weights
    assert summary(out / "baselines" / "probe")["strategy"] == "linear-probe"
    assert summary(out / "baselines" / "probe")["hyperparameters"]["lr"] == 1e-3  # the probe's own default
    assert "scratch" in section["verdict"] and "linear probe" in section["verdict"]
    assert section["verdict"] in stdout


def test_scratch_baseline_starts_from_random_weights(with_baselines, tiny_model):
    out, _ = with_baselines
    scratch = out / "baselines" / "scratch"
    assert summary(scratch)["init"] == "random"
    saved = RunDir(scratch).saved_config()
    assert saved["model"]["init"] == "random" and saved["train"]["epochs"] == 2 and saved["train"]["lr"] == 3e-3
    # Rebuild the baseline's model from its own saved config, as its fit did: same shapes as the
    # pretrained body, none of its values.
    from ftkit.runs.fit import prepare

    model = prepare(validate(saved)).model
    pretrained = load_file(str(tiny_model / "model.safetensors"))
    body = {name.split(".", 1)[1]: p for name, p in model.state_dict().items() if name.startswith("bert.")}
    # (norms and biases start at 1 and 0 in any init: only the drawn weights can tell)
    compared = [name for name in pretrained if name in body and name.endswith("weight") and "LayerNorm" not in name]
    assert len(compared) > 10
    for name in compared:
        assert body[name].shape == pretrained[name].shape
        assert not torch.equal(body[name], pretrained[name]), name


@pytest.mark.precision
def test_resume_reuses_finished_baselines_and_continues_a_killed_one(with_baselines):
    out, _ = with_baselines
    before = summary(out)["baselines"]
    probe_summary = (out / "baselines" / "probe" / "summary.json").read_text()
    (out / "baselines" / "scratch" / "summary.json").unlink()  # as if killed before it finished
    # What `ftkit fit ... --resume --baseline scratch,probe` runs (in-process: no second interpreter start)
    fit_with_baselines(validate({"out": str(out)}), ["scratch", "probe"], resume=True, quiet=True)
    assert (out / "baselines" / "probe" / "summary.json").read_text() == probe_summary  # reused, not rerun
    after = summary(out)["baselines"]
    assert after["scratch"]["value"] == before["scratch"]["value"]  # same seed, data and config: same result
    assert after["probe"] == before["probe"] and after["verdict"] == before["verdict"]


def test_unknown_baseline_is_refused_naming_the_flag(tmp_path, tiny_model, sentiment):
    result = run_cli(*flags(tiny_model, sentiment, tmp_path / "run", "--baseline", "scratch,nope"))
    assert result.returncode == 2 and "--baseline" in result.stderr and "nope" in result.stderr
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="--seeds"):
        fit_with_baselines(validate({"out": str(tmp_path / "x")}), ["probe"], seeds=3)


def test_derived_configs_change_one_thing(tmp_path):
    cfg = validate({"strategy": {"name": "lora", "rank": 4}, "train": {"lr": 1e-3, "epochs": 5}, "seed": 7,
                    "retention": {"reference_data": "ref.csv", "rehearsal": 0.2}})
    scratch, probe = derive(cfg, "scratch", tmp_path / "s"), derive(cfg, "probe", tmp_path / "p")
    assert scratch.model.init == "random" and scratch.strategy.name == "full" and scratch.train.lr is None
    assert probe.strategy.name == "linear-probe" and not probe.strategy.model_extra and probe.train.lr is None
    assert scratch.train.epochs == 5 and probe.train.epochs == 10 and scratch.seed == probe.seed == 7  # probes are cheap
    assert scratch.retention.reference_data is None and probe.retention.rehearsal == 0  # forgetting: the run's question
    assert cfg.strategy.name == "lora" and cfg.model.init == "pretrained"  # the run's own config is untouched
    assert check_names(["scratch,probe", "scratch"]) == ["scratch", "probe"]


def _run(values, seconds, test, ci=None, steps=100):
    history = [{"step": 25 * (i + 1), "validation": {"accuracy": v}} for i, v in enumerate(values)]
    metrics = {"test": {"accuracy": test, **({"ci": {"accuracy": ci}} if ci else {})}}
    return {"metrics": metrics, "best": {"metric": "accuracy", "value": max(values)}, "history": history,
            "timing": {"train_seconds": seconds, "steps": steps}}


def test_gain_time_and_verdict_arithmetic(tmp_path):
    tuned = _run([0.7, 0.85, 0.9, 0.88], 40.0, 0.90, ci=[0.88, 0.92])
    scratch = _run([0.6, 0.8], 120.0, 0.78)
    assert seconds_to_match(tuned, scratch) == 20.0  # step 50 of 100 -> half of 40 s
    entry = compare_runs(tuned, scratch, tmp_path)
    assert entry["gain_points"] == 12.0 and entry["time_ratio"] == 3.0
    probe = compare_runs(tuned, _run([0.89], 10.0, 0.895), tmp_path)
    assert probe["within_noise"] and probe["seconds_to_match"] == 30.0
    assert seconds_to_match(tuned, _run([0.95], 10.0, 0.9)) is None  # never reached
    text = verdict({"scratch": entry, "probe": probe})
    assert text.startswith("Fine-tuning gained +12.0 points of accuracy over training from scratch, and matched "
                           "scratch's best validation score in 20 s, 6.0× less than scratch's 120 s.")
    assert "The linear probe is as good" in text and "within noise" in text and "not worth it" in text
    assert "still improving" not in text and "still improving" in verdict({"probe": probe}, still_improving=True)
