"""The pretrained model's own pooling (issue 21): a sentence-transformers folder's
1_Pooling/config.json (mean over the tokens, + Normalize in modules.json) feeds the text heads, the
linear probe's features, ranking / label-noise features; saved models predict the same after
loading, in ONNX and with plain transformers as the model card says; model.pooling=cls restores
BERT's [CLS] pooler."""
import json
import logging
import shutil

import numpy as np
import pytest
import torch

from conftest import build_tiny_bert, run_cli, summary
from ftkit.config import FitConfig, validate
from ftkit.data.frozen_features import frozen_features
from ftkit.errors import ConfigError
from ftkit.models.loading import resolve
from ftkit.models.pooling import Pooling, choose_pooling, folder_pooling
from ftkit.onnxrt.export import export_onnx
from ftkit.onnxrt.runtime import load_onnx
from ftkit.reporting.card import card_text
from ftkit.tasks import get_task
from ftkit.tasks.text_classification import read_examples

TEXTS = ["good film", "the movie was very bad and dull and boring", "great fun"]  # lengths differ: padding


def with_pooling(folder, mode: str = "mean", normalize: bool = False):
    """Make a tiny BERT folder a sentence-transformers one: 1_Pooling/config.json (+ modules.json)."""
    (folder / "1_Pooling").mkdir(exist_ok=True)
    flags = {f"pooling_mode_{m}": m == {"mean": "mean_tokens", "cls": "cls_token", "max": "max_tokens"}[mode]
             for m in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags}))
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    return folder


@pytest.fixture(scope="module")
def st_model(tmp_path_factory):
    return with_pooling(build_tiny_bert(tmp_path_factory.mktemp("tiny-st")), normalize=True)


def config(model, pooling: str = "auto", task: str = "text-classification", strategy: str = "full") -> FitConfig:
    return FitConfig.model_validate({"task": task, "model": {"name": str(model), "pooling": pooling},
                                     "strategy": {"name": strategy}, "data": {"train": "-"}})


def built(model, pooling: str = "auto", task: str = "text-classification", strategy: str = "full"):
    torch.manual_seed(0)
    return get_task(task).build(config(model, pooling, task, strategy), resolve(str(model)), ["neg", "pos"])


def mean_pooled(net, tokenizer, normalize: bool = True) -> torch.Tensor:
    """What the head should read: mask-aware mean of the body's last hidden states, unit length."""
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = net.base_model(**enc).last_hidden_state  # (batch, seq, hidden)
    m = enc["attention_mask"].unsqueeze(-1).float()
    v = (h * m).sum(1) / m.sum(1)
    return torch.nn.functional.normalize(v, dim=-1) * v.shape[-1] ** 0.5 if normalize else v


def head_input(net, tokenizer) -> torch.Tensor:
    captured = []
    hook = net.classifier.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    with torch.no_grad():
        net.eval()(**tokenizer(TEXTS, padding=True, return_tensors="pt"))
    hook.remove()
    return captured[0]


def saved(model, folder, pooling: str = "auto", strategy: str = "full"):
    """A model folder as fit saves it (build + save, no training)."""
    cfg = config(model, pooling, strategy=strategy)
    net, tokenizer = built(model, pooling, strategy=strategy)
    meta = {"labels": ["neg", "pos"], "max_length": 64, "base_model": str(model), "base_model_location": str(model),
            "trust_remote_code": False, "eval_precision": "fp32", "adapter": False, "temperature": None}
    folder.mkdir()
    get_task("text-classification").save(net, tokenizer, folder, meta, cfg)
    return folder


def test_folder_pooling_reads_the_sentence_transformers_config(tmp_path, caplog):
    model = build_tiny_bert(tmp_path / "m")
    assert folder_pooling(str(model)) is None  # a plain transformers folder
    assert choose_pooling("auto", str(model)) is None and choose_pooling("mean", str(model)) == \
        Pooling("mean", False, "model.pooling")
    with_pooling(model, "mean", normalize=True)
    assert folder_pooling(str(model)) == Pooling("mean", True, "1_Pooling/config.json")
    assert choose_pooling("cls", str(model)) is None  # the switch back to BERT's own head
    with_pooling(model, "max")
    assert folder_pooling(str(model)).mode == "max"
    flags = json.loads((model / "1_Pooling" / "config.json").read_text())
    (model / "1_Pooling" / "config.json").write_text(json.dumps({**flags, "pooling_mode_max_tokens": False,
                                                                 "pooling_mode_mean_sqrt_len_tokens": True}))
    with caplog.at_level(logging.WARNING):
        assert folder_pooling(str(model)) is None
    assert "mean_sqrt_len" in caplog.text


@pytest.mark.parametrize("strategy, normalized", [("linear-probe", True), ("full", False), ("lp-ft", False)])
def test_the_head_reads_the_folders_mean_pooling(st_model, strategy, normalized):
    """The folder's Normalize is kept for a frozen body and dropped when the body trains."""
    net, tokenizer = built(st_model, strategy=strategy)
    assert type(net.bert.pooler).__name__ == "TokenPooler"
    assert net.config.ftkit_pooling["normalize"] is normalized
    assert torch.allclose(head_input(net, tokenizer), mean_pooled(net, tokenizer, normalized), atol=1e-5)
    # mask-aware: a text scores the same alone as padded in a batch with a longer one
    with torch.no_grad():
        alone = net(**tokenizer(TEXTS[:1], return_tensors="pt")).logits
        padded = net(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


@pytest.mark.parametrize("task", ["text-multilabel", "text-regression"])
def test_the_sibling_text_heads_read_it_too(st_model, task):
    net, tokenizer = built(st_model, task=task)  # a full fine-tune: the mean without Normalize
    assert torch.allclose(head_input(net, tokenizer), mean_pooled(net, tokenizer, normalize=False), atol=1e-6)
    probe, tokenizer = built(st_model, task=task, strategy="linear-probe")
    assert torch.allclose(head_input(probe, tokenizer), mean_pooled(probe, tokenizer), atol=1e-5)


def test_pooling_cls_restores_berts_pooler(st_model, tiny_model):
    for net, tokenizer in (built(st_model, "cls"), built(tiny_model, "auto")):
        assert type(net.bert.pooler).__name__ == "BertPooler"
        enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
        with torch.no_grad():
            cls = net.bert.pooler(net.bert(**enc).last_hidden_state)  # dense + tanh of [CLS]
        assert torch.allclose(head_input(net, tokenizer), cls, atol=1e-6)
    forced, tokenizer = built(tiny_model, "mean")  # a plain folder, mean asked for: no normalisation
    assert torch.allclose(head_input(forced, tokenizer), mean_pooled(forced, tokenizer, normalize=False), atol=1e-6)


@pytest.mark.parametrize("pooling, folder, normalize", [("auto", "st", False), ("mean", "plain", True)])
def test_normalize_pooled_overrides_the_folder(st_model, tiny_model, pooling, folder, normalize):
    model = st_model if folder == "st" else tiny_model
    cfg = FitConfig.model_validate({"model": {"name": str(model), "pooling": pooling, "normalize_pooled": normalize},
                                    "data": {"train": "-"}})
    torch.manual_seed(0)
    net, tokenizer = get_task("text-classification").build(cfg, resolve(str(model)), ["neg", "pos"])
    assert net.config.ftkit_pooling["normalize"] is normalize
    assert torch.allclose(head_input(net, tokenizer), mean_pooled(net, tokenizer, normalize=normalize), atol=1e-5)
    assert choose_pooling("cls", str(model), normalize) is None  # nothing to normalise on BERT's own head


def test_a_bad_pooling_names_the_flag(tiny_model):
    with pytest.raises(ConfigError, match="model.pooling"):
        validate({"model": {"name": str(tiny_model), "pooling": "avg"}, "data": {"train": "x.csv"}})


def test_mean_on_an_architecture_without_a_pooler_names_the_flag(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    folder = tmp_path / "distil"
    shutil.copytree(build_tiny_bert(tmp_path / "bert"), folder, ignore=shutil.ignore_patterns("*.safetensors",
                                                                                              "config.json"))
    DistilBertModel(DistilBertConfig(vocab_size=40, dim=32, n_layers=1, n_heads=2, hidden_dim=64,
                                     max_position_embeddings=64)).save_pretrained(folder)
    with pytest.raises(ConfigError, match="model.pooling"):
        built(folder, "mean")
    with_pooling(folder)  # auto: the folder's mean cannot go on DistilBERT's head, so its own head is kept
    net, _ = built(folder, "auto")
    assert net.config.to_dict().get("ftkit_pooling") is None


@pytest.mark.parametrize("strategy, normalized, source", [
    ("full", False, "1_Pooling/config.json, without Normalize while the body trains"),
    ("linear-probe", True, "1_Pooling/config.json")])
def test_saved_model_predicts_as_trained_and_as_the_card_says(st_model, tmp_path, strategy, normalized, source):
    net, tokenizer = built(st_model, strategy=strategy)
    folder = saved(st_model, tmp_path / "model", strategy=strategy)
    meta, config_json = json.loads((folder / "ftkit.json").read_text()), json.loads((folder / "config.json").read_text())
    assert meta["text_pooling"] == {"mode": "mean", "normalize": normalized, "source": source}
    assert config_json["ftkit_pooling"]["mode"] == "mean"
    assert folder_pooling(str(folder)) == Pooling("mean", normalized, "config.json ftkit_pooling")  # trained on further
    with torch.no_grad():
        trained = torch.softmax(net.eval()(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits, -1).numpy()
    loaded = get_task("text-classification").predictor(folder)
    probs = np.array([[r["probabilities"][k] for k in ("neg", "pos")] for r in loaded.predict(TEXTS)])
    assert np.abs(probs - trained).max() < 1e-5
    # the plain-transformers recipe the model card writes (run the card's code block itself)
    run_dir = tmp_path
    (run_dir / "summary.json").write_text(json.dumps({"task": "text-classification", "model": str(st_model)}))
    card = card_text(run_dir)
    code = card.split("AutoModelForSequenceClassification` would load")[1].split("```python\n")[1].split("```")[0]
    scope: dict = {}
    exec(code, scope)  # noqa: S102  (the card's own example, on this folder)
    card_text_probs = loaded.predict(["a warm, funny film"])[0]["probabilities"]  # the card's example input
    assert np.abs(torch.softmax(scope["logits"], -1).numpy()[0] - [card_text_probs["neg"], card_text_probs["pos"]]).max() < 1e-5


def test_onnx_export_of_a_pooled_model_keeps_parity(st_model, tmp_path, sentiment):
    folder = saved(st_model, tmp_path / "model")
    out = tmp_path / "onnx"
    out.mkdir()
    record = export_onnx(folder, out, check_data=sentiment["test"])  # raises when ONNX and torch differ
    assert record["parity"]["max_abs_diff"] <= 1e-4 and record["parity"]["examples"] > 0
    torch_pred, onnx_pred = get_task("text-classification").predictor(folder), load_onnx(out)
    a, b = torch_pred.predict(TEXTS), onnx_pred.predict(TEXTS)
    assert [r["label"] for r in a] == [r["label"] for r in b]
    assert max(abs(x["score"] - y["score"]) for x, y in zip(a, b)) <= 1e-4


def test_frozen_features_are_the_mean_pooled_ones(st_model, sentiment):
    """What ranking and the label-noise probe read (data/frozen_features.py), and the cache key
    tells mean from [CLS] features."""
    task = get_task("text-classification")
    examples = read_examples(str(sentiment["test"]), "text", "label", False)
    parts = [("test", examples.subset(list(range(8))))]
    (mean,), _, (record,) = frozen_features(config(st_model), task, ["neg", "pos"], parts)
    (cls,), _, (cls_record,) = frozen_features(config(st_model, "cls"), task, ["neg", "pos"], parts)
    net, tokenizer = built(st_model)
    enc = tokenizer(parts[0][1].texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = net.eval().bert(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    expected = (torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1) * h.shape[-1] ** 0.5).numpy()
    assert np.abs(mean - expected).max() < 1e-4
    assert np.allclose(np.linalg.norm(mean, axis=1), h.shape[-1] ** 0.5, atol=1e-4) and not np.allclose(mean, cls, atol=1e-3)
    assert record["file"] != cls_record["file"]


def test_linear_probe_run_trains_on_mean_pooled_features(st_model, sentiment, tmp_path):
    out = tmp_path / "run"
    result = run_cli("fit", "--model", str(st_model), "--train", str(sentiment["train"]), "--test",
                     str(sentiment["test"]), "--out", str(out), "--strategy", "linear-probe", "--epochs", "4",
                     "--quiet", "--set", "train.threads=1")
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "model" / "ftkit.json").read_text())
    assert meta["text_pooling"]["mode"] == "mean"
    loaded = get_task("text-classification").predictor(out / "model")
    metrics, _ = loaded.evaluate(loaded.read(str(sentiment["test"])))
    assert metrics["accuracy"] == pytest.approx(summary(out)["metrics"]["test"]["accuracy"], abs=1e-9)


def test_retention_reads_the_pooled_vector_and_random_init_keeps_the_pooling(st_model, sentiment):
    from ftkit.evaluation.retention import outputs
    from ftkit.models.loading import randomize

    task = get_task("text-classification")
    net, tokenizer = built(st_model)
    examples = read_examples(str(sentiment["test"]), "text", "label", False).subset(list(range(6)))
    data = task.encode(examples, tokenizer, config(st_model), ["neg", "pos"])
    feats, _ = outputs(net, "classifier", None, data, 4)
    enc = tokenizer(examples.texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = net.eval().bert(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    mean = (h * m).sum(1) / m.sum(1)  # a fine-tune's head input: the folder's mean, without its Normalize
    assert np.abs(feats - mean.numpy()).max() < 1e-4
    before = net.bert.embeddings.word_embeddings.weight.detach().clone()
    randomize(net)  # model.init=random: fresh weights, the same (weightless) pooling
    assert type(net.bert.pooler).__name__ == "TokenPooler"
    assert not torch.allclose(before, net.bert.embeddings.word_embeddings.weight)


def test_a_lora_run_reloads_and_exports_with_its_pooling(st_model, sentiment, tmp_path):
    out = tmp_path / "lora"
    result = run_cli("fit", "--model", str(st_model), "--train", str(sentiment["train"]), "--test",
                     str(sentiment["test"]), "--out", str(out), "--strategy", "lora", "--epochs", "1",
                     "--batch-size", "16", "--lr", "3e-3", "--quiet", "--set", "train.threads=1")
    assert result.returncode == 0, result.stderr
    loaded = get_task("text-classification").predictor(out / "model")  # base model + adapter, pooling reapplied
    assert type(loaded.model.base_model.model.bert.pooler).__name__ == "TokenPooler"
    metrics, _ = loaded.evaluate(loaded.read(str(sentiment["test"])))
    assert metrics["accuracy"] == pytest.approx(summary(out)["metrics"]["test"]["accuracy"], abs=1e-9)
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    assert export_onnx(out / "model", onnx)["parity"]["max_abs_diff"] <= 1e-4  # the merged graph pools too
