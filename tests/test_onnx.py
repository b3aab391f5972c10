"""ONNX export (fp32 and int8) and the onnxruntime predictors: for every task the ONNX predictor
gives the torch predictor's outputs (same labels, probabilities within 1e-4), int8 is smaller and
reports the metric before and after, a graph that drifts from torch fails the export, and the
text predictor runs without importing torch."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import build_tiny_ctc
from ftkit.config import FitConfig
from ftkit.errors import ConfigError, FtkitError
from ftkit.models.loading import resolve
from ftkit.onnxrt.export import export_onnx
from ftkit.onnxrt.runtime import load_onnx
from ftkit.tasks import get_task

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def saved_model(task_name: str, model, labels: list[str], folder, **data):
    """A model folder as fit saves it (build + save, no training): seconds, not a run."""
    cfg = FitConfig.model_validate({"task": task_name, "model": {"name": str(model)}, "data": {"train": "-", **data}})
    task = get_task(task_name)
    net, processor = task.build(cfg, resolve(str(model)), labels)
    text = task.capabilities.text_max_length
    meta = {"labels": labels, "max_length": cfg.data.max_length if text else None, "base_model": str(model),
            "base_model_location": str(model), "trust_remote_code": False, "eval_precision": "fp32",
            "adapter": False, "temperature": None}
    folder.mkdir()
    task.save(net, processor, folder, meta, cfg)
    return folder


def exported(model_dir, tmp_path, name="onnx", **options):
    out = tmp_path / name
    out.mkdir()
    return out, export_onnx(model_dir, out, **options)


def assert_same_predictions(torch_results: list[dict], onnx_results: list[dict]):
    assert len(torch_results) == len(onnx_results)
    for a, b in zip(torch_results, onnx_results):
        assert a.keys() == b.keys() and a["label"] == b["label"]
        assert a["probabilities"].keys() == b["probabilities"].keys()
        assert max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in a["probabilities"]) <= 1e-4


# ---------------------------------------------------------------- text classification

def test_text_export_predicts_as_torch(finished_run, sentiment, tmp_path):
    model_dir = finished_run / "model"
    out, record = exported(model_dir, tmp_path, check_data=sentiment["test"])
    meta = json.loads((out / "ftkit.json").read_text())
    assert meta["runtime"] == "onnx" and meta["onnx"]["file"] == "model.onnx" and meta["onnx"]["opset"] >= 17
    assert meta["onnx"]["quantized"] is None and meta["labels"] == ["neg", "pos"]
    assert record["parity"]["max_abs_diff"] <= 1e-4 and record["parity"]["examples"] == 80
    assert json.loads((out / "export.json").read_text()) == json.loads(json.dumps(record))

    torch_pred, onnx_pred = get_task("text-classification").predictor(model_dir), load_onnx(out)
    texts = ["the movie was good", "awful boring plot", " ".join(["a very dull story"] * 12)]
    assert_same_predictions(torch_pred.predict(texts), onnx_pred.predict(texts))
    examples = torch_pred.read(str(sentiment["test"]))
    (m_torch, p_torch), (m_onnx, p_onnx) = torch_pred.evaluate(examples), onnx_pred.evaluate(examples)
    assert m_torch["accuracy"] == m_onnx["accuracy"] and np.abs(p_torch - p_onnx).max() <= 1e-4
    frame_torch = torch_pred.predict_frame(str(sentiment["test"]), None, None)
    frame_onnx = onnx_pred.predict_frame(str(sentiment["test"]), None, None)
    assert list(frame_torch.columns) == list(frame_onnx.columns)
    assert (frame_torch["predicted"] == frame_onnx["predicted"]).all()


def test_text_temperature_is_applied(finished_run, tmp_path):
    import shutil

    model_dir = tmp_path / "model"
    shutil.copytree(finished_run / "model", model_dir)
    meta = json.loads((model_dir / "ftkit.json").read_text())
    (model_dir / "ftkit.json").write_text(json.dumps({**meta, "temperature": 3.0, "max_length": 6}))
    out, _ = exported(model_dir, tmp_path)  # built-in samples
    texts = ["good fun", "bad", "the plot was dull and the actor boring but the film fun"]  # the last truncated
    hot, plain = load_onnx(out).predict(texts), get_task("text-classification").predictor(finished_run / "model").predict(texts)
    assert_same_predictions(get_task("text-classification").predictor(model_dir).predict(texts), hot)
    assert abs(hot[0]["score"] - plain[0]["score"]) > 1e-3  # the temperature did something


@pytest.mark.parametrize("task_fixture", ["finished_run", "tagger"])
def test_a_batch_split_over_threads_gives_the_one_thread_outputs(task_fixture, request, sentiment, ner, tmp_path):
    """A batch of 16+ rows runs as one part per thread on a single-threaded session (data-parallel
    predict); the parts' outputs, put back in order, are the outputs of the whole batch on one thread."""
    model_dir = request.getfixturevalue(task_fixture)
    model_dir = model_dir / "model" if (model_dir / "model").is_dir() else model_dir
    out, _ = exported(model_dir, tmp_path)
    one, two = load_onnx(out, threads=1), load_onnx(out, threads=2)
    data = sentiment["test"] if task_fixture == "finished_run" else ner["test"]
    (m_one, p_one), (m_two, p_two) = one.evaluate(one.read(str(data))), two.evaluate(two.read(str(data)))
    assert two.session.split_batches > 0 and one.session.split_batches == 0
    metric = "accuracy" if task_fixture == "finished_run" else "f1"
    assert m_one[metric] == m_two[metric] and m_one["loss"] == pytest.approx(m_two["loss"], abs=1e-6)
    if isinstance(p_one, list):  # NER: per-sentence word probabilities
        assert max(np.abs(x - y).max() for x, y in zip(p_one, p_two)) <= 1e-6
    else:
        assert np.abs(p_one - p_two).max() <= 1e-6
    assert two.predict(["good film"] * 3) == one.predict(["good film"] * 3)  # small batches: the intra-op session


def test_text_int8_is_smaller_and_reports_accuracy(finished_run, sentiment, tmp_path):
    out, record = exported(finished_run / "model", tmp_path, quantize="int8", check_data=sentiment["test"])
    int8 = record["int8"]
    assert int8["metric"] == "accuracy" and 0 <= int8["accuracy_after"] <= 1
    assert int8["accuracy_before"] == pytest.approx(json.loads((finished_run / "summary.json").read_text())
                                                    ["metrics"]["test"]["accuracy"])
    assert abs(int8["accuracy_after"] - int8["accuracy_before"]) <= 0.1
    assert record["size_bytes"]["int8"] < record["size_bytes"]["fp32"]
    assert json.loads((out / "ftkit.json").read_text())["onnx"]["quantized"] == "int8"
    assert load_onnx(out).predict(["good film"])[0]["label"] in ("neg", "pos")


def test_unknown_quantization_names_the_flag(finished_run, tmp_path):
    with pytest.raises(ConfigError, match="--quantize"):
        exported(finished_run / "model", tmp_path, quantize="int4")


def test_a_graph_that_drifts_from_torch_fails_the_export(finished_run, tmp_path, monkeypatch):
    from ftkit.onnxrt import graphs

    write = graphs.write_graph

    def corrupt(graph, path, opset):  # export, then shift one class's bias in the graph
        import onnx
        from onnx import numpy_helper

        write(graph, path, opset)
        model = onnx.load(str(path))
        (bias,) = [i for i in model.graph.initializer if i.name.endswith("classifier.bias")]
        bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + np.float32([0.01, 0]), bias.name))
        onnx.save(model, str(path))

    monkeypatch.setattr(graphs, "write_graph", corrupt)
    with pytest.raises(FtkitError, match="parity check.*differ from torch by up to"):
        exported(finished_run / "model", tmp_path)


def test_text_predictor_runs_without_torch(finished_run, tmp_path):
    out, _ = exported(finished_run / "model", tmp_path)
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from ftkit.onnxrt.runtime import load_onnx
        pred = load_onnx(Path({str(out)!r}), threads=1)
        print(pred.predict(["the movie was good"])[0]["label"])
        assert "torch" not in sys.modules, "torch was imported"
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("neg", "pos")


# ---------------------------------------------------------------- NER

@pytest.fixture(scope="module")
def tagger(tmp_path_factory, tiny_model):
    """An untrained tagger with short windows (max_length 8, stride 3): sentences span windows."""
    folder = tmp_path_factory.mktemp("tagger") / "model"
    return saved_model("token-classification", tiny_model, ["O", "B-NEG", "I-NEG", "B-POS"], folder,
                       max_length=8, stride=3)


def test_ner_export_predicts_as_torch(tagger, ner, tmp_path):
    out, record = exported(tagger, tmp_path, check_data=ner["test"])
    assert record["parity"]["max_abs_diff"] <= 1e-4
    torch_pred, onnx_pred = get_task("token-classification").predictor(tagger), load_onnx(out)
    inputs = ["the movie was good and the plot was awful boring and the actor fun", ["bad", "film"], ""]
    a, b = torch_pred.predict(inputs), onnx_pred.predict(inputs)
    assert [r["tags"] for r in a] == [r["tags"] for r in b] and [r["tokens"] for r in a] == [r["tokens"] for r in b]
    assert [[e["type"] for e in r["entities"]] for r in a] == [[e["type"] for e in r["entities"]] for r in b]
    sentences = torch_pred.read(str(ner["test"]))
    (m_torch, p_torch), (m_onnx, p_onnx) = torch_pred.evaluate(sentences), onnx_pred.evaluate(sentences)
    assert m_torch["f1"] == m_onnx["f1"] and m_torch["loss"] == pytest.approx(m_onnx["loss"], abs=1e-4)
    assert max(np.abs(x - y).max() for x, y in zip(p_torch, p_onnx)) <= 1e-4


def test_ner_int8_reports_entity_f1(tagger, ner, tmp_path):
    _, record = exported(tagger, tmp_path, quantize="int8", check_data=ner["test"])
    assert record["int8"]["metric"] == "f1" and record["int8"]["accuracy_after"] is not None
    assert record["size_bytes"]["int8"] < record["size_bytes"]["fp32"]


def test_ner_predictor_runs_without_torch(tagger, tmp_path):
    out, _ = exported(tagger, tmp_path)
    code = f"""import sys; from ftkit.onnxrt.runtime import load_onnx
r = load_onnx({str(out)!r}).predict(["the movie was good"])[0]; print(len(r["tags"]))
assert "torch" not in sys.modules"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4"


# ---------------------------------------------------------------- images

def test_image_export_predicts_as_torch(tiny_resnet, images, tmp_path):
    model_dir = saved_model("image-classification", tiny_resnet, ["horizontal", "vertical"], tmp_path / "model")
    out, record = exported(model_dir, tmp_path, check_data=images["test"])
    assert record["parity"]["max_abs_diff"] <= 1e-4 and record["parity"]["examples"] == 30
    torch_pred, onnx_pred = get_task("image-classification").predictor(model_dir), load_onnx(out)
    paths = sorted(str(p) for p in (images["test"] / "vertical").iterdir())[:5]
    assert_same_predictions(torch_pred.predict(paths), onnx_pred.predict(paths))
    _, record = exported(model_dir, tmp_path, "int8", quantize="int8", check_data=images["test"])
    assert record["int8"]["accuracy_after"] is not None and record["size_bytes"]["int8"] < record["size_bytes"]["fp32"]


def test_image_predictor_runs_without_torch(tiny_resnet, images, tmp_path):
    model_dir = saved_model("image-classification", tiny_resnet, ["horizontal", "vertical"], tmp_path / "model")
    out, _ = exported(model_dir, tmp_path)
    path = sorted((images["test"] / "vertical").iterdir())[0]
    code = f"""import sys; from ftkit.onnxrt.runtime import load_onnx
print(load_onnx({str(out)!r}).predict([{str(path)!r}])[0]["label"])
assert "torch" not in sys.modules"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- audio

RATE = 8000


def write_tones(folder, n: int, seed: int, longest: float = 1.5):
    """folder/low/*.wav (~300 Hz) and folder/high/*.wav (~1200 Hz), 0.5-`longest` s."""
    import soundfile

    rng = np.random.default_rng(seed)
    for i in range(n):
        label = ("low", "high")[i % 2]
        hz = (300 if label == "low" else 1200) * rng.uniform(0.9, 1.1)
        t = np.arange(int(RATE * rng.uniform(0.5, longest))) / RATE
        (folder / label).mkdir(parents=True, exist_ok=True)
        clip = 0.3 * np.sin(2 * np.pi * hz * t) + 0.02 * rng.standard_normal(len(t))
        soundfile.write(folder / label / f"{i:03d}.wav", clip.astype(np.float32), RATE)
    return folder


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return write_tones(tmp_path_factory.mktemp("tones") / "test", 12, 2)


@pytest.fixture(scope="module")
def tiny_wav2vec2(tmp_path_factory):
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    folder = tmp_path_factory.mktemp("wav2vec2")
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            conv_dim=(16, 16, 16), conv_stride=(5, 8, 8), conv_kernel=(10, 8, 8), num_conv_pos_embeddings=8,
                            num_conv_pos_embedding_groups=2, do_stable_layer_norm=True, feat_extract_norm="layer",
                            classifier_proj_size=8, num_labels=2)
    Wav2Vec2ForSequenceClassification(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("family", ["whisper", "wav2vec2"])
def test_audio_export_predicts_as_torch(family, tiny_whisper, tiny_wav2vec2, tones, tmp_path):
    """Whisper (a 2 s window: a 5 s clip is scored in 3 windows, averaged) and wav2vec2 (any length)."""
    import soundfile

    model = tiny_whisper if family == "whisper" else tiny_wav2vec2
    model_dir = saved_model("audio-classification", model, ["high", "low"], tmp_path / "model")
    out, record = exported(model_dir, tmp_path, check_data=tones)
    assert record["parity"]["max_abs_diff"] <= 1e-4 and record["parity"]["examples"] == 12
    t = np.arange(5 * RATE) / RATE
    soundfile.write(tmp_path / "long.wav", (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), RATE)
    paths = [tmp_path / "long.wav", *sorted((tones / "low").iterdir())[:3]]
    torch_pred, onnx_pred = get_task("audio-classification").predictor(model_dir), load_onnx(out)
    assert_same_predictions(torch_pred.predict(paths), onnx_pred.predict(paths))
    _, record = exported(model_dir, tmp_path, "int8", quantize="int8", check_data=tones)
    assert record["int8"]["accuracy_after"] is not None and record["size_bytes"]["int8"] > 0
    # (no size check: these encoders hold ~30 kB of weights, less than the quantize nodes add)


# ---------------------------------------------------------------- speech recognition

def test_ctc_speech_export_transcribes_as_torch(speech, tmp_path):
    model_dir = saved_model("speech-recognition", build_tiny_ctc(tmp_path / "ctc"), [], tmp_path / "model")
    out, record = exported(model_dir, tmp_path, check_data=speech["test"])
    assert record["parity"]["max_abs_diff"] <= 1e-4 and record["parity"]["examples"] == 10
    torch_pred, onnx_pred = get_task("speech-recognition").predictor(model_dir), load_onnx(out)
    examples = torch_pred.read(str(speech["test"]))
    (m_torch, h_torch), (m_onnx, h_onnx) = torch_pred.evaluate(examples), onnx_pred.evaluate(examples)
    assert h_torch == h_onnx and m_torch["wer"] == m_onnx["wer"]
    assert m_torch["loss"] == pytest.approx(m_onnx["loss"], rel=1e-4)
    paths = examples.paths[:3]
    assert torch_pred.predict(paths) == onnx_pred.predict(paths)


@pytest.mark.slow
def test_ctc_speech_int8_reports_wer(speech, tmp_path):
    model_dir = saved_model("speech-recognition", build_tiny_ctc(tmp_path / "ctc"), [], tmp_path / "model")
    _, record = exported(model_dir, tmp_path, "int8", quantize="int8", check_data=speech["test"])
    assert record["int8"]["metric"] == "wer" and record["int8"]["accuracy_after"] is not None


def test_whisper_speech_recognition_is_refused_clearly(tiny_whisper, tmp_path):
    model_dir = saved_model("speech-recognition", tiny_whisper, [], tmp_path / "model")
    with pytest.raises(ConfigError, match="not available for Whisper speech recognition"):
        exported(model_dir, tmp_path)
