"""The model card, RUN_DIR/model/README.md: what the model is, how well it does (with intervals),
where it falls short, and how to load it.

A YAML front-matter block in the Hugging Face model-card style carries the facts a script checks
(base model, task, metrics with values); the Markdown body says the same for people.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from ftkit.reporting.sources import read_json, scalars

AUTO_CLASSES = {"text-classification": "AutoModelForSequenceClassification",
                "token-classification": "AutoModelForTokenClassification",
                "image-classification": "AutoModelForImageClassification",
                "audio-classification": "AutoModelForAudioClassification",
                "speech-recognition": "AutoModelForSpeechSeq2Seq"}
EXAMPLE_INPUT = {"token-classification": '"going to see taylor swift in new york"',
                 "image-classification": '"photo.jpg"', "audio-classification": '"clip.wav"',
                 "speech-recognition": '"clip.wav"'}
FILE_FLAG = {"image-classification": "--image photo.jpg", "audio-classification": "--audio clip.wav",
             "speech-recognition": "--audio clip.wav"}
# the Hub's name for the task (its classification pipelines serve multi-label models too)
PIPELINE_TAGS = {"speech-recognition": "automatic-speech-recognition", "text-multilabel": "text-classification",
                 "image-multilabel": "image-classification"}
PROCESSORS = {"image-classification": "AutoImageProcessor", "audio-classification": "AutoFeatureExtractor",
              "speech-recognition": "AutoProcessor"}
SMALL_DATA = 1000  # training examples; fewer: scores vary a lot with the split and the seed


def card_text(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    s = read_json(run_dir / "summary.json") or {}
    meta = read_json(run_dir / "model" / "ftkit.json") or {}
    doctor = read_json(run_dir / "doctor.json")
    config = _config(run_dir)
    parts = [_front_matter(s, meta, run_dir, config), _intro(s, run_dir), _data(s, doctor, config),
             _training(s), _results(s), _retention_and_baselines(s), _limitations(s, meta, doctor),
             _how_to_load(s, meta, run_dir)]
    return "\n".join(p for p in parts if p)


def _config(run_dir: Path) -> dict:
    try:
        return yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))["config"] or {}
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}


def _library(run_dir: Path, meta: dict) -> str:
    model = run_dir / "model"
    if meta.get("adapter") or (model / "adapter_config.json").is_file():
        return "peft"
    return "transformers" if (model / "config.json").is_file() else "ftkit"


def _front_matter(s: dict, meta: dict, run_dir: Path, config: dict) -> str:
    task = s.get("task", "")
    results = [{"type": name, "name": f"{split} {name}", "value": round(float(value), 6), "split": split}
               for split in ("test", "validation", "test_before")
               for name, value in scalars((s.get("metrics") or {}).get(split) or {}).items()]
    doc = {"library_name": _library(run_dir, meta), "base_model": s.get("model"),
           "pipeline_tag": PIPELINE_TAGS.get(task, task),
           "tags": ["ftkit", task, f"strategy:{s.get('strategy')}"],
           "metrics": list(dict.fromkeys(r["type"] for r in results)),
           "model-index": [{"name": run_dir.name, "results": [{
               "task": {"type": PIPELINE_TAGS.get(task, task)}, "dataset": {"name": _dataset(config), "type": "custom"},
               "metrics": results}]}],
           "ftkit": {"strategy": s.get("strategy"), "labels": s.get("labels"), "seed": s.get("seed"),
                     "trainable_params": (s.get("params") or {}).get("trainable"),
                     "total_params": (s.get("params") or {}).get("total")}}
    return "---\n" + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True) + "---\n"


def _dataset(config: dict) -> str:
    train = (config.get("data") or {}).get("train")
    return Path(str(train)).name if train else "unknown"


def _intro(s: dict, run_dir: Path) -> str:
    return (f"# {run_dir.name}\n\n"
            f"A `{s.get('task')}` model fine-tuned with ftkit from the pretrained "
            f"model **{s.get('model')}** ({s.get('model_source', 'source not recorded')}) with the "
            f"**{s.get('strategy')}** strategy."
            + (f" Labels ({len(s.get('labels'))}): {', '.join(f'`{x}`' for x in s.get('labels'))}."
               if s.get("labels") else "") + "\n"
            "The full report with plots is `report.html` in the run folder (`../report.html` from here).\n")


def _data(s: dict, doctor: dict | None, config: dict) -> str:
    rows = s.get("data") or {}
    lines = ["## Data\n", "| split | examples | source |", "|---|---:|---|"]
    d = config.get("data") or {}
    for split, n in rows.items():
        source = d.get(split) or (f"held out from {d.get('train')}" if split != "train" else "")
        lines.append(f"| {split} | {n} | {source} |")
    summary = (doctor or {}).get("summary") or {}
    if summary:
        flagged = [f"{c['name']} ({c['severity']}: {c['message']})" for c in (doctor or {}).get("checks") or []
                   if c.get("severity") in ("warn", "error")]
        lines.append(f"\nData doctor: {summary.get('errors', 0)} error(s), {summary.get('warnings', 0)} warning(s)"
                     + (": " + "; ".join(flagged) if flagged else "") + ".")
    return "\n".join(lines) + "\n"


def _training(s: dict) -> str:
    params, hp = s.get("params") or {}, s.get("hyperparameters") or {}
    share = params.get("trainable_share")
    lines = ["## Training\n",
             f"- strategy: `{s.get('strategy')}`; trainable parameters {params.get('trainable')} of "
             f"{params.get('total')}" + (f" ({100 * share:.1f}%)" if share is not None else ""),
             "- hyperparameters: " + ", ".join(f"{k}={v}" for k, v in hp.items() if v is not None),
             (f"- seed {s.get('seed')}, {s.get('device')} ({s.get('precision')}), "
              f"{(s.get('timing') or {}).get('train_seconds')} s of training")]
    return "\n".join(lines) + "\n"


def _results(s: dict) -> str:
    metrics = s.get("metrics") or {}
    lines = ["## Results\n", "| split | metric | value | 95% CI |", "|---|---|---:|---|"]
    for split in ("test", "validation", "test_before"):
        m = metrics.get(split) or {}
        ci = m.get("ci") or {}
        label = "test, before fine-tuning (zero-shot)" if split == "test_before" else split
        for name, value in scalars(m).items():
            interval = f"[{ci[name][0]:.4f}, {ci[name][1]:.4f}]" if name in ci else ""
            lines.append(f"| {label} | {name} | {value:.4f} | {interval} |")
    if len(lines) == 3:
        return "## Results\n\nNo held-out split was scored.\n"
    n = (metrics.get("test") or metrics.get("validation") or {}).get("n")
    verdict = (s.get("zero_shot") or {}).get("verdict")
    return ("\n".join(lines) + (f"\n\nIntervals: bootstrap over {n} examples.\n" if n else "\n")
            + (f"\nBefore vs after fine-tuning: {verdict}.\n" if verdict else ""))


def _retention_and_baselines(s: dict) -> str:
    out = []
    r = s.get("retention")
    if r:
        out.append(f"## Retention\n\n{r.get('measure', 'original task')}: {r.get('before')} before, "
                   f"{r.get('after')} after fine-tuning ({r.get('retained_pct')}% retained). {r.get('verdict', '')}\n")
    b = {k: v for k, v in (s.get("baselines") or {}).items() if isinstance(v, dict)}
    if b:
        rows = [f"| {k} | {v.get('value')} | {v.get('finetuned_value')} | {v.get('gain_points')} |" for k, v in b.items()]
        out.append("## Baselines\n\n| baseline | baseline score | fine-tuned | gain (points) |\n|---|---:|---:|---:|\n"
                   + "\n".join(rows) + f"\n\n{s['baselines'].get('verdict', '')}\n")
    return "\n".join(out)


def _limitations(s: dict, meta: dict, doctor: dict | None) -> str:
    n_train = (s.get("data") or {}).get("train")
    items = []
    if n_train is not None:
        items.append(f"Trained on {n_train} examples" + (": a small set, so expect scores to vary with the split "
                                                        "and seed (see the intervals)" if n_train < SMALL_DATA else ""))
    if s.get("labels"):
        items.append(f"Predicts only these {len(s.get('labels'))} labels; an input of another kind still "
                     "gets one of them.")
    if meta.get("pooling"):  # audio classifiers record how clips are pooled
        window = f"; clips longer than the {meta['max_seconds']:g} s window are scored window by window and averaged" \
            if meta.get("max_seconds") else ""
        items.append(f"Clips are heard at {meta.get('rate')} Hz, pooled as: {meta.get('pooling', 'the model')}{window}.")
    if meta.get("family"):  # transcribers record their model family
        window = f"; clips longer than {meta['max_seconds']:g} s are transcribed in windows" if meta.get("max_seconds") else ""
        language = meta.get("language") or "the training data's language"
        items.append(f"Transcribes {language} speech at {meta.get('rate')} Hz{window}; WER/CER are scored after "
                     f"`{meta.get('normalize')}` normalisation.")
    if meta.get("max_length"):
        items.append(f"Text is truncated to {meta['max_length']} tokens.")
    if meta.get("image_size"):
        items.append(f"Images are resized to {meta['image_size']} pixels.")
    items.append("Languages and domains: not recorded; assume only those of the training data.")
    verdict = (s.get("overfitting") or {}).get("verdict")
    if verdict:
        items.append(f"Overfitting: {verdict}")
    cal = ((s.get("metrics") or {}).get("test") or {}).get("calibration") or {}
    if cal.get("ece") is not None:
        items.append(f"Calibration: expected calibration error {cal['ece']:.3f} on the test split"
                     + (f" after temperature scaling (T={cal['temperature']:.3f})" if cal.get("temperature") else ""))
    if (doctor or {}).get("summary", {}).get("warnings"):
        items.append("The data doctor flagged the training data (see Data).")
    return "## Limitations\n\n" + "\n".join(f"- {x}" for x in items) + "\n"


def _pooled_usage(pooling: dict, run_dir: Path, max_length: int | None) -> list[str]:
    """A head on the model's own pooling (models/pooling.py): plain transformers loads the body, and
    the head's weights are in the same safetensors file; AutoModelForSequenceClassification would
    read [CLS] through a pooler this model does not have (random weights, wrong predictions)."""
    mode, norm = pooling["mode"], pooling.get("normalize")
    pool = {"mean": "(h * m).sum(1) / m.sum(1)", "max": "h.masked_fill(m == 0, -1e9).max(1).values",
            "cls": "h[:, 0]"}[mode]
    return [f"The head reads the model's own pooling ({mode} over the non-padding tokens"
            + (", normalised to unit length and scaled by the square root of the hidden size" if norm else "")
            + "), not [CLS] through a pooler layer: "
            "`AutoModelForSequenceClassification` would load this folder with a randomly initialised pooler "
            "and predict wrongly. With plain transformers, load the body and apply the pooling and the head "
            "(`classifier.weight` / `classifier.bias` in model.safetensors):", "",
            "```python", "import torch", "from safetensors.torch import load_file",
            "from transformers import AutoModel, AutoTokenizer", "",
            f'model_dir = "{run_dir / "model"}"', "body = AutoModel.from_pretrained(model_dir).eval()",
            "tokenizer = AutoTokenizer.from_pretrained(model_dir)",
            'head = {k: v for k, v in load_file(f"{model_dir}/model.safetensors").items() if k.startswith("classifier.")}',
            'enc = tokenizer(["a warm, funny film"], padding=True, truncation=True, '
            + (f"max_length={max_length}, " if max_length else "") + 'return_tensors="pt")',
            "with torch.no_grad():",
            "    h = body(**enc).last_hidden_state  # (batch, seq, hidden)",
            '    m = enc["attention_mask"].unsqueeze(-1).float()  # (batch, seq, 1)',
            f"    v = {pool}",
            *(["    v = torch.nn.functional.normalize(v, dim=-1) * v.shape[-1] ** 0.5  # unit length x sqrt(hidden)"]
              if norm else []),
            '    logits = v @ head["classifier.weight"].T + head["classifier.bias"]', "```", ""]


def _how_to_load(s: dict, meta: dict, run_dir: Path) -> str:
    task = s.get("task", "")
    example = EXAMPLE_INPUT.get(task, '"a warm, funny film"')
    flag = FILE_FLAG.get(task, f"--text {example}")
    out = ["## How to load\n", "```python", "import ftkit", "",
           f'run = ftkit.load("{run_dir}")', f"run.predict([{example}])", "```", "",
           "```bash", f"ftkit predict {run_dir} {flag}", "```", ""]
    auto = AUTO_CLASSES.get(task)
    library = _library(run_dir, meta)
    if library == "transformers" and auto and meta.get("text_pooling"):
        out += _pooled_usage(meta["text_pooling"], run_dir, meta.get("max_length"))
    elif library == "transformers" and auto:
        processor = PROCESSORS.get(task, "AutoTokenizer")
        auto = "AutoModelForCTC" if meta.get("family") == "ctc" else auto  # only transcribers save a family
        out += ["With plain transformers (this folder is a Hugging Face model folder, safetensors):", "",
                "```python", f"from transformers import {auto}, {processor}", "",
                f'model_dir = "{run_dir / "model"}"', f"model = {auto}.from_pretrained(model_dir)",
                f"processor = {processor}.from_pretrained(model_dir)", "```", ""]
    elif library == "peft":
        out.append(f"This folder holds a LoRA adapter and the trained head; it needs the base model `{s.get('model')}`. "
                   f"`ftkit export {run_dir} --out DIR` merges them into plain weights.\n")
    if meta.get("temperature"):
        out.append(f"ftkit divides log-probabilities by the fitted temperature {meta['temperature']:.3f} "
                   "(`ftkit.json`); plain transformers outputs are not temperature-scaled.\n")
    out.append("`ftkit.json` holds the label list and preprocessing settings: "
               + json.dumps({k: meta[k] for k in ("max_length", "image_size", "rate", "language", "normalize")
                             if meta.get(k)}) + "\n")
    return "\n".join(out)
