"""Task shapes combined: a multi-label model over a text pair (issue 22's label side and input
side together): label sets read beside two text columns, pairs through the tokenizer's pair API,
and predict = ftkit.load for lists and objects per input."""
import json
import random

import pandas as pd
import pytest

import ftkit
from conftest import FILLER, NEGATIVE, POSITIVE, run_cli, summary, write_csv


def pair_tag_rows(n: int, seed: int) -> list[dict]:
    """Labels: 'pos-first' when the first text holds a positive word, 'neg-second' when the second
    holds a negative one; both, one, or (never) none."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        first = [rng.choice(FILLER) for _ in range(rng.randint(2, 5))]
        second = [rng.choice(FILLER) for _ in range(rng.randint(2, 5))]
        kinds = rng.choice([["pos-first"], ["neg-second"], ["neg-second", "pos-first"]])
        if "pos-first" in kinds:
            first.insert(rng.randrange(len(first) + 1), rng.choice(POSITIVE))
        if "neg-second" in kinds:
            second.insert(rng.randrange(len(second) + 1), rng.choice(NEGATIVE))
        rows.append({"first": " ".join(first), "second": " ".join(second), "tags": json.dumps(kinds)})
    return rows


def test_multilabel_over_a_text_pair_fits_and_predicts_lists_and_objects(tiny_model, tmp_path):
    train = write_csv(tmp_path / "train.csv", pair_tag_rows(200, 1))
    test = write_csv(tmp_path / "test.csv", pair_tag_rows(60, 2))
    out = tmp_path / "run"
    result = run_cli("fit", "--model", str(tiny_model), "--train", str(train), "--test", str(test),
                     "--text-column", "first,second", "--label-column", "tags", "--out", str(out),
                     "--epochs", "6", "--batch-size", "8", "--lr", "3e-3", "--quiet", "--set", "train.threads=1",
                     "--set", "eval.bootstrap=100")
    assert result.returncode == 0, result.stderr
    s = summary(out)
    assert s["task"] == "text-multilabel"  # a JSON-list label column makes it multi-label
    assert set(s["metrics"]["test"]["per_label"]) == {"pos-first", "neg-second"}
    assert s["metrics"]["test"]["micro_f1"] > 0.7, s["metrics"]["test"]
    rows = pd.read_csv(test).head(6)
    run = ftkit.load(out)
    as_lists = run.predict([[a, b] for a, b in zip(rows["first"], rows["second"])])
    as_objects = run.predict([{"first": a, "second": b} for a, b in zip(rows["first"], rows["second"])])
    assert as_lists == as_objects
    saved = pd.read_csv(out / "predictions.csv").head(6)
    for got, (_, row) in zip(as_lists, saved.iterrows()):
        for name, p in got["probabilities"].items():
            assert p == pytest.approx(row[f"prob_{name}"], abs=1e-5)


def test_a_jsonl_label_list_column_is_multilabel_without_label_sep(tmp_path):
    rows = [{"text": f"text {i}", "label": ["a", "b"][: 1 + i % 2]} for i in range(20)]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = ftkit.check(train=str(train), out=str(tmp_path / "run"))
    assert cfg.task == "text-multilabel" and cfg.train.class_weights == "auto"  # multi-label's default
    plain = write_csv(tmp_path / "plain.csv", [{"text": f"t {i}", "label": "ab"[i % 2]} for i in range(20)])
    assert ftkit.check(train=str(plain), out=str(tmp_path / "run2")).task == "text-classification"
