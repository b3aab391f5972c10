"""The data doctor: planted duplicates, leaks, conflicts, flipped labels, corrupt images are found;
clean data raises (almost) no alarms; `fit` refuses leaked splits unless --allow-leakage."""
from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import POSITIVE, run_cli, sentiment_rows, write_conll, ner_sentences, write_csv, write_image_folder

from ftkit.config import build_config
from ftkit.data.doctor import Options, diagnose, fast_report
from ftkit.data.label_noise import candidates
from ftkit.data.near_dup import near_text_pairs, normalise, shingles
from ftkit.errors import DataError
from ftkit.tasks import get_task

# Clean data may trip a check by chance; the doctor must stay below this share of rows flagged.
FALSE_ALARM_RATE = 0.02

WORDS = [f"w{i}" for i in range(400)]


def long_text(rng: random.Random, n: int = 24) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def cfg_for(train: Path, test: Path | None = None, task: str = "text-classification", **values):
    flags = {"task": task, "data.train": str(train), "data.test": str(test) if test else None}
    return build_config(flags=flags, values={"data.validation_size": 0, **values})


def report_for(cfg):
    return fast_report(cfg, get_task(cfg.task).prepare_data(cfg))


def flagged_rows(report, names=("duplicates", "near-duplicates", "leakage", "near-leakage", "conflicts")) -> int:
    return sum(len(report.get(n).examples) for n in names)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """Sentiment rows with known problems at known CSV lines (line = index + 2: header is line 1)."""
    rng = random.Random(3)
    rows = sentiment_rows(120, 11)
    base = long_text(rng)
    words = base.split()
    near = " ".join(words[:12] + ["changed"] + words[13:])  # one word of 24 replaced: Jaccard 0.84
    rows += [{"text": base, "label": "pos"}, {"text": near, "label": "pos"},   # lines 122, 123: near dups
             dict(rows[0]),                                                      # line 124 = line 2: exact
             {"text": "  " + rows[1]["text"].upper() + " !!", "label": rows[1]["label"]},  # 125 = 3: normalised
             {"text": rows[2]["text"], "label": "neg" if rows[2]["label"] == "pos" else "pos"}]  # 126 vs 4: conflict
    test = sentiment_rows(30, 12) + [dict(rows[10]), {"text": rows[20]["text"] + ".", "label": rows[20]["label"]}]
    folder = tmp_path_factory.mktemp("planted")
    return {"train": write_csv(folder / "train.csv", rows), "test": write_csv(folder / "test.csv", test)}


def test_planted_duplicates_leaks_and_conflicts_are_found(planted):
    report = report_for(cfg_for(planted["train"], planted["test"]))
    dup = report.get("duplicates")
    assert dup.severity == "warn" and dup.count == 3  # exact, normalised, and the conflicting copy
    groups = {tuple(r["row"] for r in d["rows"]): d["kind"] for d in dup.details}
    assert groups[(2, 124)] == "exact" and groups[(3, 125)] == "normalised" and (4, 126) in groups
    near = report.get("near-duplicates")
    assert [(d["rows"][0]["row"], d["rows"][1]["row"]) for d in near.details] == [(122, 123)]
    leak = report.get("leakage")
    assert leak.severity == "error" and leak.count == 2
    assert {(d["rows"][0]["row"], d["rows"][1]["split"], d["rows"][1]["row"]) for d in leak.details} == \
        {(12, "test", 32), (22, "test", 33)}
    conflict = report.get("conflicts")
    assert conflict.count == 2 and {r["row"] for r in conflict.details[0]["rows"]} == {4, 126}
    assert report.summary["failed"] == ["leakage"]


def test_doctor_cli_writes_json_and_exits_0(planted, tmp_path):
    out = tmp_path / "doctor.json"
    result = run_cli("doctor", "--train", planted["train"], "--test", planted["test"], "--no-label-noise",
                     "--out", out, "--set", "data.validation_size=0")
    assert result.returncode == 0, result.stderr
    assert "leakage" in result.stdout and "1 error(s)" in result.stdout
    doc = json.loads(out.read_text())
    assert {c["name"] for c in doc["checks"]} >= {"schema", "leakage", "conflicts", "label-noise"}
    assert next(c for c in doc["checks"] if c["name"] == "label-noise")["severity"] == "skipped"
    strict = run_cli("doctor", "--train", planted["train"], "--test", planted["test"], "--no-label-noise",
                     "--out", out, "--set", "data.validation_size=0", "--strict", "--quiet")
    assert strict.returncode == 1 and "1 error(s)" in strict.stdout


def test_fit_refuses_leaked_splits_unless_allowed(planted, tiny_model, tmp_path):
    out = tmp_path / "run"
    flags = ["fit", "--model", tiny_model, "--train", planted["train"], "--test", planted["test"], "--out", out,
             "--epochs", "1", "--quiet", "--set", "train.threads=1"]
    result = run_cli(*flags)
    assert result.returncode == 2
    assert "--allow-leakage" in result.stderr and "test.csv line 32" in result.stderr
    assert not out.exists()  # refused before the run folder is made

    import ftkit
    run = ftkit.fit(model=str(tiny_model), train=str(planted["train"]), test=str(planted["test"]), out=str(out),
                    epochs=1, allow_leakage=True, quiet=True, overrides={"train.threads": 1})
    doc = json.loads((run.path / "doctor.json").read_text())
    assert next(c for c in doc["checks"] if c["name"] == "leakage")["count"] >= 2  # + a train dup held out


def test_clean_data_stays_below_the_false_alarm_rate(tmp_path):
    rng = random.Random(5)
    rows = [{"text": long_text(rng, rng.randint(5, 30)), "label": rng.choice("abc")} for _ in range(600)]
    test = [{"text": long_text(rng, rng.randint(5, 30)), "label": rng.choice("abc")} for _ in range(150)]
    cfg = cfg_for(write_csv(tmp_path / "train.csv", rows), write_csv(tmp_path / "test.csv", test))
    report = report_for(cfg)
    assert report.summary["errors"] == 0
    assert flagged_rows(report) <= FALSE_ALARM_RATE * 750
    assert report.get("imbalance").severity == "ok"


def test_fixture_style_data_is_clean(tmp_path):
    """The synthetic data other tests train on (small vocabulary, short texts) raises no alarm."""
    cfg = cfg_for(write_csv(tmp_path / "train.csv", sentiment_rows(240, 1)),
                  write_csv(tmp_path / "test.csv", sentiment_rows(80, 2)), **{"data.validation_size": 0.1})
    report = report_for(cfg)
    assert report.summary["errors"] == 0 and flagged_rows(report) <= FALSE_ALARM_RATE * 320


def test_imbalance_and_single_example_labels_are_reported(tmp_path):
    rows = sentiment_rows(100, 4)
    rows = [r for r in rows if r["label"] == "pos"] + [r for r in rows if r["label"] == "neg"][:8]
    rows.append({"text": "neutral ok " + POSITIVE[0], "label": "neutral"})
    report = report_for(cfg_for(write_csv(tmp_path / "train.csv", rows), test=None, **{"data.test_size": 0}))
    imb = report.get("imbalance")
    assert imb.severity == "warn" and "class_weights=auto" in imb.fix and "ratio 50.0" in imb.message
    schema = report.get("schema")
    assert schema.severity == "warn" and "'neutral'" in schema.message


def test_long_texts_are_outliers(tmp_path):
    rng = random.Random(0)
    rows = sentiment_rows(40, 3) + [{"text": long_text(rng, 200), "label": "pos"}]
    report = report_for(cfg_for(write_csv(tmp_path / "train.csv", rows), test=None, **{"data.test_size": 0}))
    out = report.get("outliers")
    assert out.count == 1 and out.examples[0]["row"] == 42 and "max_length" in out.fix


def test_fast_checks_take_well_under_a_second_for_thousands_of_texts(tmp_path):
    rng = random.Random(1)
    rows = [{"text": long_text(rng, rng.randint(8, 40)), "label": rng.choice("ab")} for _ in range(3000)]
    cfg = cfg_for(write_csv(tmp_path / "train.csv", rows), test=None)
    splits = get_task(cfg.task).prepare_data(cfg)
    tick = time.perf_counter()
    fast_report(cfg, splits)
    assert time.perf_counter() - tick < 3.0  # ~0.4 s on an idle machine; O(n^2) would take minutes


def test_near_duplicate_text_pairs():
    rng = random.Random(2)
    texts = [long_text(rng, 20) for _ in range(300)]
    texts.append(" ".join(texts[7].split()[:-1] + ["tail", "extra"]))  # Jaccard 18/21
    sets = [shingles(normalise(t)) for t in texts]
    pairs = near_text_pairs(sets, 0.8)
    assert [(i, j) for i, j, _ in pairs] == [(7, 300)]
    assert normalise("  Hello,   WORLD!! ") == "hello world"


def test_label_noise_finds_flipped_labels_on_separable_features():
    rng = np.random.default_rng(0)
    n, flip = 300, 15
    labels = np.repeat([0, 1, 2], n // 3)
    centers = rng.normal(0, 3, (3, 16))
    features = centers[labels] + rng.normal(0, 1, (n, 16))
    noisy = labels.copy()
    flipped = rng.choice(n, flip, replace=False)
    noisy[flipped] = (noisy[flipped] + 1) % 3
    found = candidates(features, noisy, ["a", "b", "c"])
    hits = {c["index"] for c in found} & set(flipped.tolist())
    assert len(hits) >= 0.8 * flip
    assert len(found) - len(hits) <= FALSE_ALARM_RATE * n  # clean rows wrongly flagged
    assert found[0]["suggested"] == "abc"[labels[found[0]["index"]]]


def test_label_noise_through_the_model(tiny_model, tmp_path):
    """Flipped labels among 200 word-separable reviews, features of the tiny random BERT."""
    rows = sentiment_rows(200, 5)
    flipped = random.Random(0).sample(range(200), 10)
    for i in flipped:
        rows[i]["label"] = "neg" if rows[i]["label"] == "pos" else "pos"
    cfg = cfg_for(write_csv(tmp_path / "train.csv", rows), write_csv(tmp_path / "test.csv", sentiment_rows(20, 6)),
                  **{"model.name": str(tiny_model), "train.threads": 1})
    report = diagnose(cfg, get_task(cfg.task), Options())
    noise = report.get("label-noise")
    found = {d["row"] for d in noise.details if d["split"] == "train"}
    assert len(found & {i + 2 for i in flipped}) >= 7, noise.message
    assert len(noise.details) <= 20
    assert {"given", "suggested", "p_given", "where"} <= set(noise.details[0])


def test_images_duplicate_leak_and_corrupt_file(tmp_path, tiny_resnet):
    train = write_image_folder(tmp_path / "train", 20, 1)
    test = write_image_folder(tmp_path / "test", 10, 2)
    first = sorted((train / "horizontal").iterdir())[0]
    shutil.copy(first, train / "horizontal" / "copy.png")  # same file bytes -> exact duplicate
    shutil.copy(first, test / "horizontal" / "leaked.png")
    (train / "vertical" / "broken.png").write_bytes(b"not a png at all")
    cfg = cfg_for(train, test, task="image-classification", **{"model.name": str(tiny_resnet)})
    with pytest.raises(DataError, match="broken.png"):
        get_task(cfg.task).prepare_data(cfg)  # what fit would say
    report = diagnose(cfg, get_task(cfg.task), Options(folds=3))
    assert report.get("label-noise").severity in ("ok", "warn"), report.get("label-noise").message  # it ran
    schema = report.get("schema")
    assert schema.severity == "error" and schema.examples[0]["row"].endswith("broken.png")
    assert report.get("duplicates").count == 1
    leak = report.get("leakage")
    assert leak.count == 1 and leak.details[0]["rows"][1]["row"].endswith("leaked.png")


def test_ner_leakage_and_label_noise_skipped(tmp_path):
    sentences = ner_sentences(60, 1)
    long_one = (["the", "movie"] * 6 + ["good"], ["O"] * 12 + ["B-POS"])
    train = write_conll(tmp_path / "train.conll", sentences + [long_one])
    test = write_conll(tmp_path / "test.conll", ner_sentences(20, 2) + [long_one])
    cfg = cfg_for(train, test, task="token-classification")
    report = diagnose(cfg, get_task(cfg.task), Options())
    assert report.get("leakage").count == 1
    assert report.get("label-noise").severity == "skipped"
    assert "token" in report.get("label-noise").message


def test_python_api(planted, tmp_path):
    import ftkit

    doc = ftkit.doctor(train=str(planted["train"]), test=str(planted["test"]), label_noise=False,
                       out=tmp_path / "d.json", overrides={"data.validation_size": 0})
    assert doc["summary"]["failed"] == ["leakage"] and (tmp_path / "d.json").is_file()


def test_schema_lists_every_empty_text_and_missing_label(tmp_path):
    rows = sentiment_rows(20, 1)
    rows[3]["text"], rows[7]["text"], rows[9]["label"] = "", "  ", ""
    cfg = cfg_for(write_csv(tmp_path / "train.csv", rows), test=None)
    report = diagnose(cfg, get_task(cfg.task), Options(label_noise=False))
    schema = report.get("schema")
    assert schema.severity == "error"
    assert [r["row"] for r in schema.examples][:3] == [5, 9, 11]  # both empty texts, the missing label
    assert "drop_empty" in schema.fix and "cannot load" in schema.message  # fit would stop at the label
