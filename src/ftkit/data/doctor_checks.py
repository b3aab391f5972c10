"""The data doctor's checks, one registered function each: ``check(ctx) -> Finding``."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from ftkit.data.findings import AUDIO_KINDS, CHECKS, Context, Finding
from ftkit.data.label_noise import check as label_noise_check
from ftkit.data.near_dup import IMAGE_MAX_DISTANCE, groups, normalise
from ftkit.data.targets import target_summary

IMBALANCE_RATIO = 3.0  # largest / smallest class at or above which the doctor warns
TOKENS_PER_WORD = 1.3  # without a tokenizer: a subword tokenizer's usual rate on English
TINY_IMAGE = 32  # pixels on the shorter side (or half the model's input size, if set)
SHORT_CLIP = 0.1  # seconds: shorter clips hold too little sound to learn from
WHISPER_SECONDS = 30.0  # Whisper's input window: longer clips are cut off (when data.max_audio_seconds is unset)


def _worst(*severities: str) -> str:
    order = ["ok", "skipped", "warn", "error"]
    return max(severities, key=order.index) if severities else "ok"


# ---------------------------------------------------------------- schema

@CHECKS.register("schema", "columns present and typed, empty inputs, unreadable files, labels with one example")
def schema(ctx: Context) -> Finding:
    found = list(ctx.problems)  # raw-file problems (ftkit doctor reads the files itself)
    if ctx.parts:
        found += [f for f in (_single_examples(ctx), _no_words(ctx), _skipped(ctx)) if f is not None]
    if not found:
        return Finding("schema", "ok", 0, "columns, inputs and labels look fine")
    return Finding("schema", _worst(*(f.severity for f in found)), sum(f.count for f in found),
                   "; ".join(f.message for f in found), "; ".join(dict.fromkeys(f.fix for f in found if f.fix)),
                   [r for f in found for r in f.examples], [{"problem": f.message, "rows": f.examples} for f in found])


def _single_examples(ctx: Context):
    train = ctx.parts[0]
    if train.labels is None or train.kind in ("ner", "asr") or ctx.numeric_target:  # not classes
        return None
    counts = class_counts(ctx)
    lonely = sorted(label for label, n in counts.items() if n == 1)
    if not lonely:
        return None
    first = {}  # label -> the first row carrying it
    for i, label in enumerate(train.labels):
        for one in (label if ctx.label_sets else (label,)):
            first.setdefault(one, i)
    rows = [train.ref(first[label]) for label in lonely]
    return Finding("schema", "warn", len(lonely), f"{len(lonely)} label(s) with a single training example "
                   f"({', '.join(map(repr, lonely[:5]))})",
                   "add examples of these classes, or merge/remove them: one example cannot be learned or "
                   "evaluated", rows)


def _no_words(ctx: Context):
    """Texts (speech recognition: transcripts) with no letters or digits at all."""
    if ctx.kind in ("image", "audio"):
        return None
    if ctx.kind == "asr":
        rows = [p.ref(i) for p in ctx.parts if p.labels is not None for i, x in enumerate(p.labels)
                if not normalise(x)]
        what = "transcript(s)"
    else:
        rows = [p.ref(i) for p in ctx.parts for i, x in enumerate(p.inputs) if not normalise(x)]
        what = "input(s)"
    if not rows:
        return None
    return Finding("schema", "warn", len(rows), f"{len(rows)} {what} hold no letters or digits",
                   "check these rows: they carry no words to learn from", rows)


def _skipped(ctx: Context):
    """Files the lenient reader left out (data.skip_bad). `ftkit doctor` lists unreadable images
    itself (scanned); audio has no such scan, so skipped clips are always counted here."""
    if ctx.kind in AUDIO_KINDS:
        return _skipped_clips(ctx)
    skipped = {k: v for k, v in (ctx.record.get("skipped") or {}).items() if v}
    if not skipped or ctx.scanned:
        return None
    n = sum(skipped.values())
    return Finding("schema", "warn", n, f"{n} unreadable image(s) skipped ({skipped})",
                   "fix or remove the unreadable files")


def _skipped_clips(ctx: Context):
    """AudioExamples.skipped (reason -> count, from audio_data.check_clips), per split; the
    record's counts where the task keeps them there (a split's subset does not carry them)."""
    recorded = ctx.record.get("skipped") or {}
    per_split = {}
    for part in ctx.parts:
        counts = recorded.get(part.split, getattr(part.examples, "skipped", None))
        if isinstance(counts, int):
            counts = {"unreadable": counts}
        counts = {reason: n for reason, n in (counts or {}).items() if n}
        if counts:
            per_split[part.split] = counts
    if not per_split:
        return None
    n = sum(sum(c.values()) for c in per_split.values())
    shown = "; ".join(f"{split}: " + ", ".join(f"{k} {reason}" for reason, k in c.items())
                      for split, c in per_split.items())
    # fit only skips with data.skip_bad; `ftkit doctor` reads leniently, so without it fit would stop
    severity = "warn" if ctx.cfg.data.skip_bad else "error"
    return Finding("schema", severity, n, f"{n} audio clip(s) skipped ({shown})",
                   "fix or remove the unreadable clips and cut long ones (the log names the first; without "
                   "--set data.skip_bad=true fit stops at it)", details=[{"skipped": per_split}])


# ---------------------------------------------------------------- duplicates and leakage

def _dup_groups(ctx: Context) -> list[list[int]]:
    """Groups of inputs equal after normalisation (images: the same pixels; audio: the same samples)."""
    return groups(ctx.keys.normalised)


def _kind(ctx: Context, members: list[int]) -> str:
    return "exact" if len({ctx.keys.exact[g] for g in members}) == 1 else "normalised"


@CHECKS.register("duplicates", "the same input more than once in a split (exact or after normalising)")
def duplicates(ctx: Context) -> Finding:
    details, extra = [], 0
    for members in _dup_groups(ctx):
        by_split: dict[str, list[int]] = {}
        for g in members:
            by_split.setdefault(ctx.index[g][0].split, []).append(g)
        for split, same in by_split.items():
            if len(same) > 1:
                extra += len(same) - 1
                details.append({"split": split, "kind": _kind(ctx, same), "rows": [ctx.ref(g) for g in same]})
    if not details:
        return Finding("duplicates", "ok", 0, "no repeated inputs within a split")
    return Finding("duplicates", "warn", extra, f"{extra} repeated input(s) in {len(details)} group(s) "
                   f"({sum(d['kind'] == 'exact' for d in details)} exact, the rest equal after normalising "
                   "case/punctuation/spacing or, for images and audio, decoded pixels/samples)",
                   "keep one row of each group: repeats over-weight those examples",
                   [r for d in details for r in d["rows"]], details)


@CHECKS.register("leakage", "an input of validation/test also in another split (after normalising)")
def leakage(ctx: Context) -> Finding:
    details, leaked = [], set()
    order = {p.split: n for n, p in enumerate(ctx.parts)}
    for members in _dup_groups(ctx):
        splits = {ctx.index[g][0].split for g in members}
        if len(splits) < 2:
            continue
        members = sorted(members, key=lambda g: order[ctx.index[g][0].split])
        first = members[0]
        for g in members[1:]:
            if ctx.index[g][0].split != ctx.index[first][0].split:
                leaked.add(g)
                details.append({"kind": _kind(ctx, [first, g]), "rows": [ctx.ref(first), ctx.ref(g)]})
    if not details:
        return Finding("leakage", "ok", 0, "no input of one split occurs in another")
    pairs = Counter(f"{d['rows'][0]['split']}/{d['rows'][1]['split']}" for d in details)
    return Finding("leakage", "error", len(leaked), f"{len(leaked)} row(s) also occur in an earlier split "
                   f"({', '.join(f'{k}: {v}' for k, v in pairs.items())}): held-out scores would be inflated",
                   "remove these rows from the later split (validation/test); `fit` refuses leaked splits "
                   "unless --allow-leakage", [r for d in details for r in d["rows"]], details)


def _near(ctx: Context, across: bool) -> list[dict]:
    out = []
    for i, j, score in ctx.near_pairs:
        a, b = ctx.index[i][0].split, ctx.index[j][0].split
        if (a != b) == across:
            out.append({"similarity": score, "rows": [ctx.ref(i), ctx.ref(j)]})
    return out


def _near_audio(name: str) -> Finding:
    return Finding(name, "skipped", 0, "near-duplicate audio is not checked (exact copies and the same samples "
                   "in another file or format are: see duplicates and leakage)")


def _near_what(ctx: Context) -> str:
    if ctx.kind == "image":
        return f"perceptual hash within {IMAGE_MAX_DISTANCE}/64 bits"
    return f"Jaccard of word bigrams >= {ctx.options.near_threshold}"


@CHECKS.register("near-duplicates", "near-identical inputs within a split (MinHash LSH / perceptual hash)")
def near_duplicates(ctx: Context) -> Finding:
    if ctx.kind in AUDIO_KINDS:
        return _near_audio("near-duplicates")
    pairs = _near(ctx, across=False)
    if not pairs:
        return Finding("near-duplicates", "ok", 0, f"no near-duplicate pairs ({_near_what(ctx)})")
    return Finding("near-duplicates", "warn", len(pairs), f"{len(pairs)} near-duplicate pair(s) within a split "
                   f"({_near_what(ctx)})", "check the pairs; drop copies that differ only by edits or crops",
                   [r for d in pairs for r in d["rows"]], pairs)


@CHECKS.register("near-leakage", "near-identical inputs across train/validation/test")
def near_leakage(ctx: Context) -> Finding:
    if ctx.kind in AUDIO_KINDS:
        return _near_audio("near-leakage")
    pairs = _near(ctx, across=True)
    if not pairs:
        return Finding("near-leakage", "ok", 0, f"no near-duplicates across splits ({_near_what(ctx)})")
    return Finding("near-leakage", "warn", len(pairs), f"{len(pairs)} near-duplicate pair(s) across splits "
                   f"({_near_what(ctx)}): held-out scores may be inflated",
                   "review the pairs and remove true copies from validation/test",
                   [r for d in pairs for r in d["rows"]], pairs)


@CHECKS.register("conflicts", "identical inputs (after normalising) with different labels")
def conflicts(ctx: Context) -> Finding:
    details = []
    for members in _dup_groups(ctx):
        labels = [ctx.label(g) for g in members]
        if None not in labels and len(set(labels)) > 1:
            details.append({"labels": sorted(set(labels)), "rows": [ctx.ref(g) | {"label": label}
                                                                     for g, label in zip(members, labels)]})
    label = "transcript" if ctx.kind == "asr" else "label"
    if not details:
        return Finding("conflicts", "ok", 0, f"identical inputs always carry the same {label}")
    n = sum(len(d["rows"]) for d in details)
    return Finding("conflicts", "warn", n, f"{len(details)} input(s) appear with different {label}s ({n} rows)",
                   f"decide the right {label} for each group and correct (or drop) the others",
                   [r for d in details for r in d["rows"]], details)


# ---------------------------------------------------------------- imbalance and outliers

def class_counts(ctx: Context) -> Counter:
    """Training examples per class (multi-label: rows carrying each label); NER: entities per type
    (a B-/S- tag, or an I- run in IO tags)."""
    train = ctx.parts[0]
    if ctx.label_sets:
        return Counter(label for labels in train.labels for label in labels)
    if train.kind != "ner":
        return Counter(train.labels)
    counts: Counter = Counter()
    for tags in train.labels:
        prev = "O"
        for tag in tags.split():
            prefix, _, kind = tag.partition("-")
            if tag != "O" and (prefix in ("B", "S") or prev.partition("-")[2] != kind):
                counts[kind or tag] += 1
            prev = tag
    return counts


@CHECKS.register("imbalance", "how unequal the classes of the training split are")
def imbalance(ctx: Context) -> Finding:
    if ctx.kind == "asr":
        return Finding("imbalance", "skipped", 0, "speech recognition has no classes to compare")
    if ctx.numeric_target:
        return _target_spread(ctx)
    counts = class_counts(ctx)
    if len(counts) < 2:
        return Finding("imbalance", "ok", 0, "fewer than two classes to compare")
    (big, n_big), (small, n_small) = counts.most_common()[0], counts.most_common()[-1]
    ratio = n_big / max(n_small, 1)
    what = "entities" if ctx.kind == "ner" else "rows" if ctx.label_sets else "examples"
    noun = "label" if ctx.label_sets else "class"
    message = (f"largest {noun} {big!r}: {n_big} {what}, smallest {small!r}: {n_small} (ratio {ratio:.1f}; "
               f"{len(counts)} {noun}{'s' if noun == 'label' else 'es'})")
    details = [{"class": k, "count": v} for k, v in counts.most_common()]
    if ratio < IMBALANCE_RATIO:
        return Finding("imbalance", "ok", 0, message, details=details)
    on = getattr(ctx.cfg.train, "class_weights", "none") == "auto"
    on = on or getattr(ctx.cfg.train, "oversample", False)
    fix = ("class weights or oversampling are on; also watch macro_f1, not only accuracy" if on else
           "--set train.class_weights=auto weights the loss by inverse class frequency, or "
           "--set train.oversample=true draws rare classes more often; judge by macro_f1")
    if ctx.kind == "ner":
        fix = "collect more sentences with the rare entity types; judge by per-type F1"
    if ctx.label_sets:  # a row carries several labels: counts are rows per label, no oversampling
        fix = ("per-label positive weights are on; judge by macro_f1 and per-label F1" if on else
               "--set train.class_weights=auto weighs each label's positives by its negatives/positives "
               "ratio; judge by macro_f1 and per-label F1")
    return Finding("imbalance", "warn", n_small, message, fix, details=details)


def _target_spread(ctx: Context) -> Finding:
    """Regression: the training target's distribution instead of class counts (no verdict on it)."""
    spread = target_summary(ctx.parts[0].labels)
    message = (f"numeric target: no classes; train mean {spread['mean']:.4g}, std {spread['std']:.4g}, "
               f"median {spread['median']:.4g}, range {spread['min']:.4g} .. {spread['max']:.4g} "
               f"({spread['distinct']} distinct values)")
    return Finding("imbalance", "ok", 0, message, details=[spread])


@CHECKS.register("outliers", "texts the model will truncate; tiny images; very short or too long clips")
def outliers(ctx: Context) -> Finding:
    if ctx.kind == "image":
        return _tiny_images(ctx)
    if ctx.kind in AUDIO_KINDS:
        return _clip_lengths(ctx)
    if ctx.kind == "ner":
        return Finding("outliers", "ok", 0, "long sentences are split into overlapping windows "
                       "(data.stride), so nothing is truncated")
    return _long_texts(ctx)


def _long_texts(ctx: Context) -> Finding:
    limit = ctx.cfg.data.max_length
    texts = [x for p in ctx.parts for x in p.inputs]
    if ctx.tokenizer is not None:
        lengths = [len(ids) for ids in ctx.tokenizer(texts, add_special_tokens=True)["input_ids"]]
        how = "tokens"
    else:  # fit's fast subset runs before the tokenizer loads
        lengths = [math.ceil(len(t.split()) * TOKENS_PER_WORD) + 2 for t in texts]
        how = f"tokens, estimated as {TOKENS_PER_WORD} per word"
    long = [g for g, n in enumerate(lengths) if n > limit]
    details = [ctx.ref(g) | {"length": lengths[g]} for g in long]
    if not long:
        return Finding("outliers", "ok", 0, f"no text longer than data.max_length={limit} ({how}; "
                       f"longest {max(lengths, default=0)})")
    return Finding("outliers", "warn", len(long), f"{len(long)} text(s) longer than data.max_length={limit} "
                   f"({how}; longest {max(lengths)}): their ends are cut off",
                   f"--set data.max_length={min(8192, _round_up(max(lengths)))} keeps them whole (slower), or shorten "
                   "them if the start carries the label", details, details)


def _round_up(n: int) -> int:
    return 1 << max(3, (n - 1).bit_length())


def _tiny_images(ctx: Context) -> Finding:
    from PIL import Image

    size = ctx.cfg.data.image_size
    limit = size // 2 if size else TINY_IMAGE
    details = []
    for g, (part, i) in enumerate(ctx.index):
        try:
            with Image.open(part.inputs[i]) as image:  # reads the header only
                w, h = image.size
        except Exception:  # noqa: BLE001  (unreadable: the schema check reports it)
            continue
        if min(w, h) < limit:
            details.append(ctx.ref(g) | {"size": [w, h]})
    if not details:
        return Finding("outliers", "ok", 0, f"no image smaller than {limit} px on its shorter side")
    return Finding("outliers", "warn", len(details), f"{len(details)} image(s) smaller than {limit} px on the shorter "
                   f"side (e.g. {Path(str(details[0]['row'])).name}: {details[0]['size']}): upscaling blurs them",
                   "use larger originals if you have them; otherwise expect weaker features for these",
                   details, details)


def audio_limit(cfg) -> tuple[float | None, str]:
    """The longest clip the model takes: data.max_audio_seconds, else 30 s for a model whose name
    says Whisper (its fixed input window), else unknown (None). Kept simple on purpose: the speech
    task itself knows the exact limit; this is the doctor's model-free estimate."""
    if cfg.data.max_audio_seconds:
        return cfg.data.max_audio_seconds, "data.max_audio_seconds"
    if "whisper" in cfg.model.name.lower():
        return WHISPER_SECONDS, "Whisper's window"
    return None, ""


def _clip_seconds(part) -> list[float | None]:
    """Each clip's duration: AudioExamples.seconds when check_clips filled it, else the file header."""
    seconds = list(getattr(part.examples, "seconds", None) or [])
    if len(seconds) == len(part):
        return seconds
    from ftkit.data.audio import backends

    soundfile, _ = backends()
    out = []
    for path in part.inputs:
        try:
            out.append(soundfile.info(path).duration)
        except Exception:  # noqa: BLE001  (unreadable: the schema check's business)
            out.append(None)
    return out


def _clip_lengths(ctx: Context) -> Finding:
    limit, source = audio_limit(ctx.cfg)
    details, g = [], 0
    for part in ctx.parts:
        for s in _clip_seconds(part):
            if s is not None and (s < SHORT_CLIP or (limit and s > limit)):
                details.append(ctx.ref(g) | {"seconds": round(s, 3), "problem": "short" if s < SHORT_CLIP else "long"})
            g += 1
    short = sum(d["problem"] == "short" for d in details)
    if not details:
        longest = (f"or longer than {limit:g} s ({source})" if limit else
                   "(no length limit known: set data.max_audio_seconds to check long clips)")
        return Finding("outliers", "ok", 0, f"no clip shorter than {SHORT_CLIP:g} s {longest}")
    found = []
    if short:
        found.append(f"{short} clip(s) shorter than {SHORT_CLIP:g} s")
    if len(details) - short:
        found.append(f"{len(details) - short} longer than {limit:g} s ({source}): the model cuts them off")
    eg = details[0]
    own = " (each with its own transcript)" if ctx.kind == "asr" else ""
    return Finding("outliers", "warn", len(details), f"{', '.join(found)} (e.g. {eg['where']}: {eg['seconds']} s)",
                   f"drop or re-record very short clips; cut long clips into shorter ones{own}, or raise "
                   "data.max_audio_seconds if the model takes them", details, details)


# ---------------------------------------------------------------- label noise (needs the model)

@CHECKS.register("label-noise", "likely mislabelled rows: confident learning on out-of-fold probe probabilities")
def label_noise(ctx: Context) -> Finding:
    return label_noise_check(ctx)


def skipped_label_noise(reason: str) -> Finding:
    return Finding("label-noise", "skipped", 0, reason, "")
