"""Audio classification: class folders and tables (unknown labels, bad clips), the Whisper
classifier (pretrained encoder, pooling over the clip's frames only, layer groups), every strategy
on a tiny Whisper and a tiny wav2vec2 (frozen weights kept, saved run = live model), the
frozen-feature paths (rank features, doctor label noise), and the real CLI end to end on tones."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import ftkit
from conftest import build_tiny_whisper, run_cli
from ftkit.api import make_config
from ftkit.cli import app
from ftkit.config import FitConfig
from ftkit.errors import DataError, StrategyError
from ftkit.models.loading import resolve
from ftkit.runs.fit import fit_run
from ftkit.strategies import STRATEGIES, get_strategy
from ftkit.strategies.groups import layer_groups
from ftkit.tasks import get_task
from ftkit.tasks.audio_classification import read_clips
from ftkit.training.features import extract

get_strategy("full")  # registers the built-ins
RATE = 8000  # files at 8 kHz: every model resamples them to 16 kHz


def tone(hz: float, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t) + 0.02 * rng.standard_normal(len(t))).astype(np.float32)


def write_tones(folder, n: int, seed: int, longest: float = 1.5):
    """folder/low/*.wav (~300 Hz) and folder/high/*.wav (~1200 Hz), 0.5-`longest` s, a little noise."""
    import soundfile

    rng = np.random.default_rng(seed)
    for i in range(n):
        label = ("low", "high")[i % 2]
        hz = (300 if label == "low" else 1200) * rng.uniform(0.9, 1.1)
        (folder / label).mkdir(parents=True, exist_ok=True)
        soundfile.write(folder / label / f"{i:03d}.wav", tone(hz, rng.uniform(0.5, longest), seed * 1000 + i), RATE)
    return folder


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    return {"train": write_tones(root / "train", 48, 1), "test": write_tones(root / "test", 24, 2)}


@pytest.fixture(scope="module")
def few_tones(tmp_path_factory):
    """20 short clips: enough for one epoch of each strategy, quickly."""
    return {"train": write_tones(tmp_path_factory.mktemp("few") / "train", 20, 3, longest=0.8)}


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    """A random Whisper (d_model 16, 2+2 layers, 8 mel bins, 2 s window). init_std 0.3: at Whisper's
    0.02 a random encoder's convolutions are ~50x smaller than its unit-size sinusoidal positions,
    so its states say where a frame is, hardly what it holds."""
    return build_tiny_whisper(tmp_path_factory.mktemp("whisper"), init_std=0.3)


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    """A random Wav2Vec2ForSequenceClassification with a head for 3 other classes."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    folder = tmp_path_factory.mktemp("wav2vec2")
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(16, 16, 16), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8), num_conv_pos_embeddings=8,
                            num_conv_pos_embedding_groups=2, do_stable_layer_norm=True, feat_extract_norm="layer",
                            classifier_proj_size=8, num_labels=3, id2label={0: "dog", 1: "cat", 2: "bird"},
                            label2id={"dog": 0, "cat": 1, "bird": 2})
    Wav2Vec2ForSequenceClassification(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(folder)
    return folder


def config(model, train, strategy: str = "full", **data) -> FitConfig:
    return FitConfig.model_validate({"task": "audio-classification", "model": {"name": str(model)},
                                     "strategy": {"name": strategy}, "data": {"train": str(train), **data}})


# ---------------------------------------------------------------- data

def test_folders_and_tables_are_read_and_unknown_labels_refused(tiny_whisper, tones, tmp_path):
    folder = read_clips(str(tones["train"]), "audio", "label")
    assert len(folder) == 48 and set(folder.labels) == {"low", "high"} and 0.5 <= min(folder.seconds)

    rows = [{"path": f"clips/{p.parent.name}/{p.name}", "kind": p.parent.name} for p in sorted(tones["test"].rglob("*.wav"))]
    (tmp_path / "clips").symlink_to(tones["test"])
    pd.DataFrame(rows).to_csv(tmp_path / "test.csv", index=False)
    with pytest.raises(DataError, match="outside the table's folder"):  # clips/ is a symlink to elsewhere
        read_clips(str(tmp_path / "test.csv"), "path", "kind")
    table = read_clips(str(tmp_path / "test.csv"), "path", "kind", allow_outside=True)
    assert table.labels == [r["kind"] for r in rows] and table.where(0) == f"{tmp_path / 'test.csv'} line 2"

    splits = get_task("audio-classification").prepare_data(config(tiny_whisper, tones["train"], test=str(tones["test"])))
    assert splits.labels == ["high", "low"] and len(splits.validation) == 5 and len(splits.test) == 24
    assert sorted(pd.Series(splits.validation.labels).value_counts().tolist()) == [2, 3]  # stratified

    pd.DataFrame(rows[:3] + [{"path": rows[0]["path"], "kind": "mid"}]).to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(DataError, match=r"odd.csv line 5: label 'mid' never occurs in the training data"):
        get_task("audio-classification").prepare_data(
            config(tiny_whisper, tones["train"], test=str(tmp_path / "odd.csv"), audio_column="path",
                   label_column="kind", allow_outside_paths=True))


def test_a_bad_clip_is_named_or_skipped_and_counted(tones, tmp_path):
    import shutil

    shutil.copytree(tones["train"], tmp_path / "data")
    (tmp_path / "data" / "low" / "broken.wav").write_bytes(b"RIFF\x00\x00 not a wave file")
    with pytest.raises(DataError, match=r"broken.wav: not readable audio .*data.skip_bad=true"):
        read_clips(str(tmp_path / "data"), "audio", "label")
    kept = read_clips(str(tmp_path / "data"), "audio", "label", skip_bad=True)
    assert len(kept) == 48 and kept.skipped == {"unreadable": 1}


# ---------------------------------------------------------------- the Whisper classifier

def test_whisper_classifier_keeps_the_encoder_and_pools_only_the_clip(tiny_whisper, tones):
    from transformers import WhisperForConditionalGeneration

    cfg = config(tiny_whisper, tones["train"])
    task = get_task(cfg.task)
    model, proc = task.build(cfg, resolve(str(tiny_whisper)), ["high", "low"])
    pretrained = WhisperForConditionalGeneration.from_pretrained(tiny_whisper).model.encoder.state_dict()
    assert all(torch.equal(v, model.encoder.state_dict()[k]) for k, v in pretrained.items())

    clips = read_clips(str(tones["train"]), "audio", "label")
    data = task.encode(clips.subset([0, 1, 2]), proc, cfg, ["high", "low"])
    pooled, _ = extract(model, "classifier", data, 8, "fp32")  # what the probe caches: (clips, d_model)
    batch = data.batch(np.arange(3))
    with torch.no_grad():
        hidden = model.encoder(batch["input_features"]).last_hidden_state  # (3, 100 positions, 16)
    for row, frames in enumerate(batch["attention_mask"].sum(dim=1).tolist()):
        positions = (frames + 1) // 2  # the stride-2 convolution: two mel frames per position
        assert 25 <= positions < 100  # a 0.5-1.5 s clip in a 2 s window
        assert np.allclose(pooled[row], hidden[row, :positions].mean(dim=0).numpy(), atol=1e-5)
        assert not np.allclose(pooled[row], hidden[row].mean(dim=0).numpy(), atol=1e-3)

    groups = layer_groups(model)
    assert len(groups.blocks) == 2 and {n for n, _ in groups.blocks[-1]} >= {"encoder.layer_norm.weight",
                                                                           "encoder.layers.1.fc2.weight"}
    assert {n for n, _ in groups.head} == {"classifier.weight", "classifier.bias"}
    assert {n.split(".")[1] for n, _ in groups.embeddings} == {"conv1", "conv2", "embed_positions"}


# ---------------------------------------------------------------- every strategy

def plain(name: str) -> str:
    return name.removeprefix("base_model.model.").replace(".base_layer", "").replace(".original_module", "")


def strategy_run(model_dir, tones, out, name: str):
    cfg = make_config(None, {"task": "audio-classification", "model": str(model_dir), "train": str(tones["train"]),
                             "strategy": name, "epochs": 1, "batch_size": 8, "lr": 3e-3, "out": str(out)},
                      {"train.threads": 1, "eval.bootstrap": 0, **({"strategy.probe_epochs": 1} if name == "lp-ft" else {})})
    return fit_run(cfg, quiet=True, score_test=False)  # no test split scored, no report: fast


@pytest.mark.parametrize("family", ["whisper", "wav2vec2"])
@pytest.mark.parametrize("name", STRATEGIES.names())
def test_every_strategy_trains_what_it_should_and_the_run_reloads(name, family, tiny_whisper, tiny_wav2vec2,
                                                                 few_tones, tmp_path):
    tones = few_tones
    model_dir = tiny_whisper if family == "whisper" else tiny_wav2vec2
    if name == "frozen-encoder":  # speech recognition's: a classifier has no decoder to train
        with pytest.raises(StrategyError, match="needs an encoder-decoder model"):
            strategy_run(model_dir, tones, tmp_path / "run", name)
        return
    out = strategy_run(model_dir, tones, tmp_path / "run", name)
    summary = json.loads((out / "summary.json").read_text())
    assert 0 < summary["params"]["trainable"] <= summary["params"]["total"]
    if name == "linear-probe":  # Whisper's head takes one vector per clip; wav2vec2 pools after its projector
        assert summary["probe"]["cache"] == ("miss" if family == "whisper" else "not cacheable")

    cfg = config(model_dir, tones["train"], name)
    fresh, _ = get_task(cfg.task).build(cfg, resolve(str(model_dir)), ["high", "low"])
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    get_strategy(name)(fresh, cfg)  # which parameters this strategy freezes
    head = ("classifier", "projector")  # new, randomly initialised: compared with the head of no run
    frozen = [plain(n) for n, p in fresh.named_parameters()
              if not p.requires_grad and plain(n) in before and not n.startswith(head)]
    predictor = ftkit.load(out).predictor
    after = {plain(k): v for k, v in predictor.model.state_dict().items()}
    assert frozen or name in ("full", "llrd", "lp-ft")
    assert all(torch.equal(before[k], after[k]) for k in frozen), f"{name} changed frozen weights"
    changed = [k for k in before if not k.startswith(head) and k in after and not torch.equal(before[k], after[k])]
    adapters = [k for k, v in after.items() if "lora_B" in k and v.abs().sum() > 0]
    assert changed or adapters or name in ("linear-probe", "gradual-unfreeze"), f"{name} trained nothing in the body"
    if name == "lora":  # on the attention's query and value projections
        assert adapters and {k.split(".")[-4] for k in adapters} == {"q_proj", "v_proj"}

    # the saved run scores its validation clips as the live model did
    record = json.loads((out / "splits.json").read_text())["validation"]
    clips = read_clips(str(tones["train"]), "audio", "label")
    validation = clips.subset([clips.paths.index(p) for p in record["clips"]])
    metrics, _ = predictor.evaluate(validation)
    assert metrics["loss"] == pytest.approx(summary["metrics"]["validation"]["loss"], abs=1e-4)
    if name == "lora":  # ftkit export merges the adapter into plain weights
        (tmp_path / "exported").mkdir()
        predictor.export(tmp_path / "exported")
        merged = ftkit.load(tmp_path / "exported").predictor
        assert not (tmp_path / "exported" / "adapter_model.safetensors").exists()
        assert merged.evaluate(validation)[0]["loss"] == pytest.approx(metrics["loss"], abs=1e-4)
    if family == "wav2vec2":  # the folder's own head (3 other classes) is kept beside the new one
        from safetensors.torch import load_file
        assert load_file(str(out / "model" / "original_head.safetensors"))["classifier.weight"].shape == (3, 8)


# ---------------------------------------------------------------- frozen features

def test_rank_features_and_doctor_label_noise_work_on_audio(tiny_whisper, tones, tmp_path):
    import shutil

    from ftkit.selection.features import candidate_features

    feats, labels, info = candidate_features(config(tiny_whisper, tones["train"]))
    assert feats.shape == (len(labels), 16) and info["dim"] == 16

    shutil.copytree(tones["train"], tmp_path / "data")
    for i in (0, 2):  # two low tones filed as high
        (tmp_path / "data" / "low" / f"{i:03d}.wav").rename(tmp_path / "data" / "high" / f"moved-{i}.wav")
    report = ftkit.doctor(task="audio-classification", model=str(tiny_whisper), train=str(tmp_path / "data"))
    noise = next(c for c in report["checks"] if c["name"] == "label-noise")
    assert noise["severity"] == "warn", noise["message"]
    assert {d["row"] for d in noise["details"]} & {str(tmp_path / "data" / "high" / f"moved-{i}.wav") for i in (0, 2)}


# ---------------------------------------------------------------- the CLI end to end

def test_cli_fit_predict_export_on_tones(tiny_whisper, tones, tmp_path):
    out = tmp_path / "run"
    result = run_cli("fit", "--task", "audio-classification", "--model", tiny_whisper, "--train", tones["train"],
                     "--test", tones["test"], "--strategy", "linear-probe", "--epochs", "10", "--lr", "1e-2",
                     "--batch-size", "8", "--out", out, "--quiet", "--set", "train.threads=1")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    test = summary["metrics"]["test"]
    assert test["accuracy"] >= 0.9 and test["ci"]["accuracy"][0] > 0.5  # chance is 0.5
    assert {"macro_f1", "loss", "per_class", "confusion_matrix", "calibration"} <= set(test)
    assert {"model.safetensors", "ftkit.json", "preprocessor_config.json"} <= {p.name for p in (out / "model").iterdir()}
    saved = pd.read_csv(out / "predictions.csv")
    assert list(saved.columns[:3]) == ["row", "audio", "label"] and {"prob_low", "prob_high"} <= set(saved.columns)

    predicted = CliRunner().invoke(app, ["predict", str(out), "--audio", saved["audio"][0]])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.stdout.splitlines()[0])["predicted"] == saved["predicted"][0]
    exported = tmp_path / "exported"
    assert CliRunner().invoke(app, ["export", str(out), "--out", str(exported)]).exit_code == 0
    for folder in (out, exported):
        classifier = ftkit.load(folder).predictor
        again = classifier.predict_proba(classifier.read(str(tones["test"])))
        assert np.allclose(saved["score"], again.max(axis=1), atol=1e-5), folder

    import soundfile  # a clip longer than the 2 s window: scored window by window, averaged
    soundfile.write(tmp_path / "long.wav", tone(300, 5.0, 7), RATE)
    assert classifier.predict([tmp_path / "long.wav"])[0]["label"] == "low"


def test_cli_refuses_a_bad_clip_naming_it(tiny_whisper, tones, tmp_path):
    import shutil

    shutil.copytree(tones["train"], tmp_path / "data")
    (tmp_path / "data" / "high" / "broken.wav").write_bytes(b"RIFF\x00\x00 not a wave file")
    result = CliRunner().invoke(app, ["fit", "--task", "audio-classification", "--model", str(tiny_whisper),
                                      "--train", str(tmp_path / "data"), "--out", str(tmp_path / "x"), "--quiet"])
    assert isinstance(result.exception, DataError)  # main() prints it on one line, exit status 2
    assert f"{tmp_path / 'data' / 'high' / 'broken.wav'}: not readable audio" in str(result.exception)
    assert not (tmp_path / "x").exists()
