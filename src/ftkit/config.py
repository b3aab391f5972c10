"""Typed configuration: YAML file + command-line flags + ``--set a.b=c`` overrides.

The config is plain data (no logic), so outer loops (CV, tuning, comparisons) can copy and
modify it safely. Validation collects every problem into one ``ConfigError`` whose message
names the flag (or dotted key) and the bad value.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ftkit.errors import ConfigError

# Python keyword / CLI flag -> dotted config key. ftkit.fit(lr=...) and `--lr` share these.
KEYWORDS = {
    "task": "task",
    "model": "model.name",
    "train": "data.train",
    "validation": "data.validation",
    "test": "data.test",
    "text_column": "data.text_column",
    "label_column": "data.label_column",
    "label_sep": "data.label_sep",
    "label_type": "data.label_type",
    "image_column": "data.image_column",
    "audio_column": "data.audio_column",
    "group_column": "data.group_column",
    "strategy": "strategy.name",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "seed",
    "out": "out",
    "allow_leakage": "data.allow_leakage",
    "tracking": "tracking.backend",
    "tracking_uri": "tracking.uri",
    "reference_data": "retention.reference_data",
    "workers": "distributed.workers",
    "address": "distributed.address",
    "cpus_per_worker": "distributed.cpus_per_worker",
    "gpus_per_worker": "distributed.gpus_per_worker",
}
# Dotted key -> the flag the user typed, so errors name it.
FLAGS = {dotted: "--" + kw.replace("_", "-") for kw, dotted in KEYWORDS.items()}


class _Section(BaseModel):
    # allow_inf_nan: `.inf` epochs or a `.nan` rate pass every bound check (nan compares false) but
    # are never meant.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class AugmentConfig(_Section):
    """Training-time image augmentation (kornia, on batches; never at evaluation)."""

    enabled: bool = Field(True, description="augment training images")
    crop_scale: float = Field(0.8, gt=0, le=1, description="random resized crop: smallest area kept (1: off)")
    flip: bool = Field(True, description="random horizontal flip")
    color_jitter: float = Field(0.2, ge=0, le=1, description="brightness/contrast/saturation jitter (0: off)")
    rotate: float = Field(10.0, ge=0, le=180, description="random rotation, degrees (0: off)")
    mixup: bool = Field(False, description="mixup (blend pairs of images and their labels)")
    cutmix: bool = Field(False, description="cutmix (paste a patch of another image, mix labels by area)")


class AudioAugmentConfig(_Section):
    """Training-time audio augmentation (speech recognition and audio classification; on each
    training clip, never at evaluation)."""

    enabled: bool = Field(True, description="augment training clips")
    prob: float = Field(0.5, ge=0, le=1, description="chance that each transform below is applied to a clip")
    gain_db: float = Field(6.0, ge=0, le=40, description="random gain, uniform in +-gain_db decibels (0: off)")
    noise_snr_min: float = Field(15.0, description="additive white noise at a signal-to-noise ratio drawn from "
                                 "[noise_snr_min, noise_snr_max] dB")
    noise_snr_max: float = Field(40.0, description="upper end of the noise SNR range, dB (<= noise_snr_min: off)")
    speed: float = Field(0.1, ge=0, lt=0.5, description="speed perturbation: factor uniform in [1-speed, 1+speed] "
                         "(tempo and pitch, as Kaldi's; 0: off)")
    spec_augment: bool = Field(True, description="SpecAugment time/feature masking inside models that support it "
                               "(Whisper, wav2vec2; training only)")


class DataConfig(_Section):
    train: Optional[str] = Field(None, description="training data: CSV, TSV, JSONL or Parquet")
    validation: Optional[str] = Field(None, description="validation data; split from train if absent")
    test: Optional[str] = Field(None, description="test data; split from train if absent")
    text_column: str = Field("text", description="column holding the input text; several, comma-separated "
                             "(premise,hypothesis; a list in YAML): a text pair, or more columns joined by the "
                             "separator token")
    label_column: str = Field("label", description="column holding the label")
    label_sep: Optional[str] = Field(None, min_length=1, description="multi-label: the labels of a row are "
                                     "joined by this (e.g. '|'); text/image classification become text-/"
                                     "image-multilabel (JSON list cells need no separator)")
    label_type: Literal["class", "number"] = Field("class", description="number: the label column holds a number "
                                                  "per row (regression); text/image classification become "
                                                  "text-/image-regression")
    allow_empty_labels: bool = Field(False, description="multi-label: accept rows whose label set is empty "
                                     "(off: such a row is refused, as a forgotten label looks the same)")
    validation_size: float = Field(0.1, ge=0, lt=1, description="share of train held out for validation (0: none)")
    test_size: float = Field(0.1, ge=0, lt=1, description="share of train held out for test when no --test")
    max_length: int = Field(128, ge=8, le=8192, description="tokens kept per input (longer inputs are truncated)")
    drop_empty: bool = Field(False, description="skip rows with empty text (counted) instead of failing")
    train_rows: Optional[int] = Field(None, ge=2, description="train on a stratified sample of this many rows "
                                      "(after validation/test are held out, so they stay the same): quick "
                                      "trials, learning curves (null: all)")
    split_seed: Optional[int] = Field(None, ge=0, description="seeds the held-out splits and CV folds (null: seed)")
    cv_folds: int = Field(0, ge=0, le=100, description="k-fold: the test part is fold cv_fold of k (ftkit cv sets it)")
    cv_fold: int = Field(0, ge=0, description="which fold is the test part (0-based; with cv_folds)")
    # image classification
    image_column: str = Field("image", description="column holding image paths (tables; relative to the file)")
    group_column: Optional[str] = Field(None, description="test metrics per value of this column (slices, bias); "
                                        "text, image and audio-classification tables")
    image_size: Optional[int] = Field(None, ge=16, le=1024, description="input pixels per side (null: the model's)")
    skip_bad: bool = Field(False, description="skip unreadable images or audio clips, and clips too long for the "
                           "model (counted) instead of failing")
    allow_leakage: bool = Field(False, description="train even if validation/test rows also occur in another "
                                "split (the data doctor's leakage check; `ftkit doctor` lists them)")
    allow_outside_paths: bool = Field(False, description="accept image/audio paths in a table (or transcripts.txt) "
                                      "that lead outside its folder (absolute, `..` or a symlink); off, so a "
                                      "table from elsewhere cannot make ftkit read arbitrary files")
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    # speech tasks (speech recognition: --text-column holds the transcript)
    audio_column: str = Field("audio", description="column holding audio paths (tables; relative to the file)")
    max_audio_seconds: Optional[float] = Field(None, gt=0, description="longer clips are refused for training "
                                               "(or skipped with data.skip_bad; predict takes them in windows) (null: the "
                                               "model's limit, 30 s for Whisper)")
    max_label_tokens: Optional[int] = Field(None, ge=4, description="speech recognition: transcripts longer than "
                                            "this many tokens are refused (null: the model's limit)")
    audio_augment: AudioAugmentConfig = Field(default_factory=AudioAugmentConfig)
    # token classification (NER)
    tokens_column: str = Field("tokens", description="JSONL key holding each sentence's tokens (NER)")
    tags_column: str = Field("tags", description="JSONL key holding each sentence's tags (NER)")
    stride: int = Field(32, ge=0, description="NER: sub-tokens shared by consecutive windows of a long sentence")
    label_all_tokens: bool = Field(False, description="NER: every sub-token carries its word's tag, not only the first")

    @field_validator("text_column", mode="before")
    @classmethod
    def check_text_columns(cls, value: Any) -> Any:
        """A YAML list of columns is the comma-separated string; no name may be empty or repeated."""
        if isinstance(value, (list, tuple)):
            if not all(isinstance(v, str) for v in value):
                raise ValueError("a list of column names must hold only strings")
            value = ",".join(value)
        if isinstance(value, str):
            names = [n.strip() for n in value.split(",")]
            if "" in names:
                raise ValueError(f"{value!r} has an empty column name; write premise,hypothesis")
            if len(set(names)) < len(names):
                raise ValueError(f"{value!r} names a column twice")
            value = ",".join(names)
        return value

    @property
    def text_columns(self) -> tuple[str, ...]:
        """The text column(s): one for plain texts, two for a pair, more are joined (data/text_columns.py)."""
        return tuple(self.text_column.split(","))


class EvalConfig(_Section):
    """Honest evaluation of the held-out splits (evaluation/honest.py)."""

    bootstrap: int = Field(1000, ge=0, description="bootstrap resamples for 95% confidence intervals (0: off)")
    level: float = Field(0.95, gt=0, lt=1, description="confidence level of the intervals")
    calibrate: bool = Field(False, description="fit a softmax temperature on validation; applied to test "
                            "predictions and to `ftkit predict` (classification)")
    min_group_size: int = Field(10, ge=1, description="--group-column: smaller groups are reported, not compared")
    # speech recognition
    normalize: Literal["none", "lowercase", "basic", "english"] = Field(
        "basic", description="text normalisation before WER/CER: none (exact), lowercase, basic (lowercase, no "
        "punctuation or symbols, single spaces), english (basic + numbers as digits, contractions and British "
        "spellings unified: Whisper's English normaliser)")
    num_beams: int = Field(1, ge=1, le=16, description="speech recognition: beam width when transcribing (1: greedy)")
    max_new_tokens: int = Field(128, ge=1, le=444, description="speech recognition: most tokens per transcript")


class ModelConfig(_Section):
    name: str = Field("minilm-l6", description="zoo name, local Hugging Face folder, or hub id")
    trust_remote_code: bool = Field(False, description="allow custom model code from the model folder")
    dropout: Optional[float] = Field(None, ge=0, lt=1, description="override every dropout rate (null: keep)")
    freeze_word_embeddings: bool = Field(
        False, description="keep the input token-embedding matrix (get_input_embeddings) frozen under any strategy: "
                           "no gradient or AdamW work for it (half of MiniLM's weights); position embeddings, "
                           "LayerNorms and the layers train as the strategy says")
    init: Literal["pretrained", "random"] = Field(
        "pretrained", description="random: same architecture from random weights (the from-scratch baseline)")
    language: Optional[str] = Field(None, description="speech recognition (Whisper): language of the transcripts, "
                                    "e.g. en, fr (null: en)")
    pooling: Literal["auto", "cls", "mean"] = Field(
        "auto", description="text heads: one vector per text from the token states. auto: the folder's own "
                            "(a sentence-transformers 1_Pooling/config.json, e.g. MiniLM's mean), else the "
                            "architecture's; cls: the architecture's (BERT: [CLS] + its dense/tanh pooler); "
                            "mean: mean over the non-padding tokens")
    normalize_pooled: Optional[bool] = Field(
        None, description="text heads on a mean/max pooling: scale the pooled vector to unit length (times "
                          "sqrt(hidden)) or not. null: the folder's Normalize module (MiniLM has one) for frozen "
                          "features (linear probe, rank, label noise), none when the body trains")


class StrategyConfig(BaseModel):
    # Strategies own their parameters (e.g. strategy.layers), so extra keys are allowed here
    # and checked by the strategy itself.
    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)
    name: str = Field("full", description="what trains: see `ftkit strategies`")


class TrainConfig(_Section):
    epochs: float = Field(3, gt=0, description="passes over the training data (may be fractional)")
    batch_size: int = Field(16, ge=1, description="examples per optimizer step (before accumulation)")
    grad_accum: int = Field(1, ge=1, description="batches accumulated per optimizer step")
    lr: Optional[float] = Field(None, gt=0, lt=1, description="peak learning rate (null: the strategy's default, "
                                "5e-5 for full fine-tuning; see `ftkit strategies`)")
    weight_decay: float = Field(0.01, ge=0, description="AdamW decay (never on bias or norm weights)")
    loss: Literal["mse", "huber"] = Field("mse", description="regression: the loss on the standardised target "
                                           "(huber: delta of one standard deviation, less pulled by outliers)")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="share of target mass spread over all classes")
    class_weights: Literal["none", "auto"] = Field(
        "none", description="auto: weight the loss by inverse class frequency (imbalanced labels; "
                            "multi-label: each label's positives by its negatives/positives, on by default)")
    oversample: bool = Field(False, description="draw training examples so each class is seen equally often "
                                                "(imbalanced labels; classification tasks)")
    l2sp: float = Field(0.0, ge=0, description="L2-SP: alpha * ||theta - theta_pretrained||^2 on the body")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="share of steps spent warming up the lr")
    schedule: Literal["linear", "cosine", "constant"] = "linear"
    max_grad_norm: Optional[float] = Field(1.0, gt=0, description="gradient clipping (null: off)")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto: bf16 autocast where the hardware runs it fast, else fp32")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    group_by_length: bool = Field(True, description="batch similar lengths together (less padding)")
    eval_every: Optional[int] = Field(None, ge=1, description="evaluate every N steps (null: each epoch)")
    eval_batch_size: int = Field(64, ge=1)
    train_eval_size: int = Field(1000, ge=1, description="training rows also scored at each validation")
    metric: Optional[str] = Field(None, description="validation metric for best model / early stopping")
    patience: Optional[int] = Field(3, ge=1, description="evaluations without improvement before stopping")
    restore_best: bool = Field(True, description="end with the weights of the best validation score")
    average: Literal["none", "greedy-soup"] = Field(
        "none", description="weight averaging after restore_best: greedy-soup averages the best validation "
                            "checkpoints while the average scores at least as well on validation")
    average_top: int = Field(3, ge=2, le=20, description="greedy-soup: best validation checkpoints kept as candidates")
    max_seconds: Optional[float] = Field(None, gt=0, description="stop training after this many seconds of "
                                         "training + validation (a time budget; null: no limit)")
    checkpoint_every: int = Field(200, ge=1, description="steps between resumable checkpoints")
    log_every: int = Field(10, ge=1, description="steps between metrics.jsonl records")
    threads: Optional[int] = Field(None, ge=1, description="CPU threads (default: all cores)")


class RetentionConfig(_Section):
    """Forgetting: the original task measured before and after fine-tuning (evaluation/retention.py)."""

    reference_data: Optional[str] = Field(None, description="reference inputs of the original task (CSV/JSONL/"
                                          "Parquet or image folder, same columns as --train; labels optional)")
    label_column: Optional[str] = Field(None, description="reference labels (null: --label-column when the file "
                                        "has it; otherwise unlabelled)")
    max_rows: int = Field(2000, ge=10, description="reference rows used (a seeded, stratified sample)")
    probe_folds: int = Field(5, ge=2, le=20, description="k of the cross-validated linear probe (encoders)")
    rehearsal: float = Field(0.0, ge=0, le=1, description="rehearsal: reference examples per training batch as a "
                             "share of the batch size, distilled from the original model (0: off)")
    rehearsal_weight: Optional[float] = Field(None, gt=0, description="weight of the rehearsal (distillation) loss "
                                              "(null: 1 with an original head, 0.1 for a bare encoder)")


class TrackingConfig(_Section):
    """Experiment tracking (tracking.py): params, per-step metrics, summary and run folder."""

    backend: Literal["none", "mlflow"] = Field("none", description="mlflow: also log the run to an MLflow "
                                               "store (pip install 'ftkit[tracking]')")
    uri: Optional[str] = Field(None, description="MLflow tracking URI (null: sqlite:///mlruns/mlflow.db in the "
                               "working folder, artifacts in mlruns/artifacts)")
    experiment: str = Field("ftkit", min_length=1, description="MLflow experiment name")
    run_name: Optional[str] = Field(None, description="MLflow run name (null: the run folder's name)")


class DistributedConfig(_Section):
    """Data-parallel training on Ray Train (ftkit/distributed/): N workers, each on its shard of every
    batch, gradients summed. train.batch_size stays the global batch, so results keep their meaning."""

    workers: int = Field(1, ge=1, le=1024, description="training processes (Ray Train workers); each trains on "
                         "its share of every batch (1: one process, no Ray)")
    address: Optional[str] = Field(None, description="Ray cluster to run the workers on: auto (the running one) or "
                                   "ray://host:port (null: start a local Ray instance and stop it afterwards)")
    cpus_per_worker: int = Field(1, ge=1, le=1024, description="CPU cores reserved per worker (its torch threads)")
    gpus_per_worker: float = Field(0, ge=0, le=8, description="GPUs per worker (0: CPU workers, gloo; >0: NCCL)")
    max_failures: int = Field(2, ge=0, le=100, description="worker failures Ray restarts from the last checkpoint "
                              "before the run fails")


class FitConfig(_Section):
    task: str = Field("text-classification", description="see `ftkit tasks`")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    seed: int = Field(0, ge=0, description="seeds the split, the head init, data order and dropout")
    out: Optional[str] = Field(None, description="run folder (default: runs/<time>-<model>)")

    @model_validator(mode="before")
    @classmethod
    def _label_sep_means_multilabel(cls, values: Any) -> Any:
        """--label-sep on a classification task asks for its multi-label sibling, --label-type number
        for its regression sibling."""
        data = values.get("data") if isinstance(values, dict) else None
        task = values.get("task", "text-classification") if isinstance(data, dict) else None
        if isinstance(task, str) and data.get("label_sep") is not None:
            values = {**values, "task": MULTILABEL_OF.get(task, task)}
        if isinstance(task, str) and data.get("label_type") == "number":
            values = {**values, "task": REGRESSION_OF.get(task, task)}
        return task_train_defaults(values)


# A single-label task -> its multi-label sibling (chosen when --label-sep is given).
MULTILABEL_OF = {"text-classification": "text-multilabel", "image-classification": "image-multilabel"}
# A classification task -> its regression sibling (chosen with --label-type number).
REGRESSION_OF = {"text-classification": "text-regression", "image-classification": "image-regression"}


# Train settings a task has by default when the config leaves them out (kept in the resolved
# config, so a run's config.yaml says what it trained with). Multi-label runs weigh each label's
# positives: most labels are absent from most rows, and unweighted BCE learned to predict no label
# at all (MiniLM-L6 on wnut-tags: test micro-F1 0.08 without, 0.31 with; bench/RESULTS.md).
TASK_TRAIN_DEFAULTS = {name: {"class_weights": "auto"} for name in MULTILABEL_OF.values()}


def task_train_defaults(values: Any) -> Any:
    """`values` with the task's TASK_TRAIN_DEFAULTS filled in where train does not set them."""
    task = values.get("task") if isinstance(values, dict) else None
    defaults = TASK_TRAIN_DEFAULTS.get(task) if isinstance(task, str) else None  # a bad task: its field says so
    train = values.get("train") if defaults else None
    if not defaults or not (train is None or isinstance(train, dict)):
        return values
    return {**values, "train": {**defaults, **(train or {})}}


def field_info(dotted: str):
    """The pydantic field at a dotted key, e.g. "train.batch_size": its description, default and
    type (the CLI's help for --batch-size comes from here)."""
    model: Any = FitConfig
    *sections, name = dotted.split(".")
    for section in sections:
        model = model.model_fields[section].annotation
    return model.model_fields[name]


def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    """Set ``tree['a']['b'] = value`` for ``dotted == 'a.b'``, creating sections as needed."""
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[keys[-1]] = value


def parse_set(item: str) -> tuple[str, Any]:
    """``'train.lr=3e-5'`` -> ``('train.lr', 3e-05)``; the value is read as YAML."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.lr=3e-5")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except Exception:  # noqa: BLE001  (YAMLError, and more from PyYAML's constructors: read it as text)
        value = raw
    if not _plain_tree(value):
        raise ConfigError(f"--set {_short(item)}: the value nests too deeply, is too large or refers to itself "
                          "(YAML aliases)")
    if isinstance(value, str):
        value = _number_or_text(value)
    return key.strip(), value


def _number_or_text(raw: str) -> Any:
    # YAML 1.1 reads "3e-5" as text; users mean a number.
    try:
        return float(raw) if any(c in raw for c in ".eE") else int(raw)
    except ValueError:
        return raw


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        reason = " ".join(str(getattr(err, "problem", None) or err).split())
        raise ConfigError(f"config file {path}{where}: not valid YAML ({reason})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path}: not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(f"config file {path}: not valid YAML (nested too deeply)") from None
    except Exception as err:  # noqa: BLE001  (PyYAML's constructors raise others for odd tags, e.g. !!timestamp x)
        raise ConfigError(f"config file {path}: not valid YAML ({type(err).__name__}: {_short(str(err))})") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"config file {path}: expected a mapping of settings at the top level")
    if not _plain_tree(tree):
        raise ConfigError(f"config file {path}: settings nest too deeply, are too large or refer "
                          "to themselves (YAML aliases)")
    return tree


def _plain_tree(value: Any) -> bool:
    """No cycles (a YAML alias inside its own anchor), at most 32 levels of lists and mappings and
    100,000 values once aliases are expanded (a "billion laughs" file): what can be flattened,
    validated and saved as JSON."""
    sizes: dict[int, int] = {}  # id -> expanded size of a node already walked

    def size(node: Any, depth: int, ancestors: frozenset) -> float:
        if not isinstance(node, (dict, list)):
            return 1
        if depth > 32 or id(node) in ancestors:
            return float("inf")
        if id(node) not in sizes:
            children = node.values() if isinstance(node, dict) else node
            inner = ancestors | {id(node)}
            total = 1
            for child in children:
                total += size(child, depth + 1, inner)
                if total > 100_000:
                    break
            sizes[id(node)] = total
        return sizes[id(node)]

    return size(value, 0, frozenset()) <= 100_000


def build_config(path: str | Path | None = None, flags: dict[str, Any] | None = None,
                 sets: list[str] | None = None, base: dict | None = None,
                 values: dict[str, Any] | None = None) -> FitConfig:
    """Merge defaults < base dict < YAML file < flags < --set items < values, then validate.

    Flags set to None mean "not given"; in `values` None is a real setting (e.g. no patience).
    """
    tree = copy.deepcopy(base) if base else {}
    if path:
        for key, value in flatten(read_yaml(path)).items():
            set_dotted(tree, key, value)
    for key, value in (flags or {}).items():
        if value is not None:
            set_dotted(tree, key, value)
    for item in sets or []:
        set_dotted(tree, *parse_set(item))
    for key, value in (values or {}).items():
        set_dotted(tree, key, value)
    return validate(tree)


def validate(tree: dict) -> FitConfig:
    try:
        return FitConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(describe_errors(err)) from None


def describe_errors(err: ValidationError) -> str:
    problems = []
    for item in err.errors():
        dotted = ".".join(str(p) for p in item["loc"])
        dotted = dotted if dotted.isprintable() else repr(dotted)[1:-1]  # a YAML key may hold a newline
        flag = FLAGS.get(dotted, f"--set {dotted}")
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown setting {dotted!r} ({flag}=...)")
            continue
        problems.append(f"{flag}: {item['msg'].lower()}, got {_short(item.get('input'))}")
    return "invalid settings: " + "; ".join(problems)


def _short(value: Any) -> str:
    """repr() cut to a readable length (a --set value or YAML node may be huge)."""
    import reprlib

    short = reprlib.Repr()
    short.maxstring = short.maxother = 80
    return " ".join(short.repr(value).split())


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 1e-4}} -> {"train.lr": 1e-4}: the dotted keys `--set` takes."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def to_dict(cfg: FitConfig) -> dict:
    return cfg.model_dump(mode="json")
