"""Text pairs and several text columns (`--text-column premise,hypothesis`): reading, the pair
encoding with token_type_ids, fit -> predict -> ftkit.load, three columns, the errors that name
the row, the doctor over the tuple, serve, ONNX parity and the frozen-feature paths."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli, sentence, summary, write_csv
from test_serve import same_predictions, serving

import ftkit
from ftkit.config import build_config
from ftkit.data.doctor import diagnose
from ftkit.data.findings import Options
from ftkit.data.near_dup import normalise
from ftkit.data.text_columns import SEGMENT_MARK, input_segments
from ftkit.errors import ConfigError, DataError
from ftkit.tasks import get_task
from ftkit.tasks.text_classification import encode, read_examples


def pair_rows(n: int, seed: int, columns: tuple[str, ...] = ("premise", "hypothesis")) -> list[dict]:
    """The label is the sentiment of the LAST column (the first ones are noise): a model that
    reads only the first column scores at chance, one that reads the pair can learn it."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        row = {c: sentence(rng, rng.choice(["pos", "neg"])) for c in columns[:-1]}
        rows.append({**row, columns[-1]: sentence(rng, label), "label": label})
    return rows


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pairs")
    return {"train": write_csv(folder / "train.csv", pair_rows(240, 1)),
            "test": write_csv(folder / "test.csv", pair_rows(80, 2))}


def pair_flags(model: Path, data: dict, out: Path, columns: str = "premise,hypothesis", *extra: str) -> list[str]:
    return ["fit", "--model", str(model), "--train", str(data["train"]), "--test", str(data["test"]),
            "--text-column", columns, "--out", str(out), "--epochs", "6", "--batch-size", "8", "--lr", "3e-3",
            "--quiet", "--set", "train.threads=1", *extra]


@pytest.fixture(scope="module")
def pair_run(tmp_path_factory, tiny_model, pairs) -> Path:
    out = tmp_path_factory.mktemp("pair-runs") / "run"
    result = run_cli(*pair_flags(tiny_model, pairs, out))
    assert result.returncode == 0, result.stderr
    return out


# ---------------------------------------------------------------- config and reading

def test_config_takes_a_comma_list_or_a_yaml_list(tmp_path):
    assert build_config(None, {"data.text_column": "premise, hypothesis"}).data.text_columns == ("premise", "hypothesis")
    yaml = tmp_path / "c.yaml"
    yaml.write_text("data:\n  text_column: [a, b, c]\n")
    assert build_config(yaml).data.text_columns == ("a", "b", "c")
    for bad, words in (("a,,b", "empty column name"), ("a,a", "names a column twice")):
        with pytest.raises(ConfigError, match=f"--text-column: .*{words}"):
            build_config(None, {"data.text_column": bad})


def test_missing_column_and_empty_value_name_file_line_and_column(tiny_model, pairs, tmp_path):
    result = run_cli(*pair_flags(tiny_model, pairs, tmp_path / "r1", "premise,hypo"))
    assert result.returncode == 2
    assert "no column 'hypo' (--text-column)" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    rows = pair_rows(40, 3)
    rows[5]["hypothesis"] = " "  # CSV line 7 (header is line 1)
    rows[9]["premise"] = ""
    data = {"train": write_csv(tmp_path / "gaps.csv", rows), "test": pairs["test"]}
    result = run_cli(*pair_flags(tiny_model, data, tmp_path / "r2"))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {data['train']} line 7: empty text in column 'hypothesis' (2 such rows); "
                                     "fill them in, or pass --set data.drop_empty=true to skip them")
    assert not (tmp_path / "r2").exists()
    examples = read_examples(str(data["train"]), "premise,hypothesis", "label", drop_empty=True)
    assert len(examples) == 38 and 7 not in examples.rows and 11 not in examples.rows
    assert examples.segments[0] == (rows[0]["premise"], rows[0]["hypothesis"])
    assert examples.texts[0] == rows[0]["premise"] + SEGMENT_MARK + rows[0]["hypothesis"]


def test_pair_encoding_uses_the_pair_api_with_token_types(tiny_model, pairs):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    examples = read_examples(str(pairs["test"]), "premise,hypothesis", "label", drop_empty=False)
    data = encode(examples, tokenizer, 12, ["neg", "pos"])
    first, second = zip(*examples.segments)
    expected = tokenizer(list(first), list(second), truncation="longest_first", max_length=12)
    assert [list(x) for x in data.ids] == expected["input_ids"]
    assert [list(t) for t in data.types] == expected["token_type_ids"]
    batch = data.batch(np.array([0, 1, 2]))
    assert batch["token_type_ids"].shape == batch["input_ids"].shape
    assert int(batch["token_type_ids"].max()) == 1  # the second side is marked
    assert (batch["token_type_ids"][batch["attention_mask"] == 0] == 0).all()  # padding is type 0


def test_three_columns_join_the_rest_with_the_separator_token(tiny_model, tmp_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    path = write_csv(tmp_path / "three.csv", pair_rows(10, 4, ("a", "b", "c")))
    examples = read_examples(str(path), "a,b,c", "label", drop_empty=False)
    data = encode(examples, tokenizer, 64, ["neg", "pos"])
    a, b, c = examples.segments[0]
    assert list(data.ids[0]) == tokenizer(a, f"{b} [SEP] {c}")["input_ids"]
    assert list(data.ids[0]).count(tokenizer.sep_token_id) == 3


# ---------------------------------------------------------------- fit, predict, load

def test_pair_fit_predict_and_load_agree(pair_run, pairs, tmp_path):
    s = summary(pair_run)
    assert s["metrics"]["test"]["accuracy"] >= 0.8  # learnt from the second column
    meta = json.loads((pair_run / "model" / "ftkit.json").read_text())
    assert meta["text_columns"] == ["premise", "hypothesis"]
    saved = pd.read_csv(pair_run / "predictions.csv")
    test = pd.read_csv(pairs["test"])
    model = ftkit.load(pair_run)
    as_lists = model.predict(test[["premise", "hypothesis"]].values.tolist())
    as_dicts = model.predict(test[["premise", "hypothesis"]].to_dict("records"))
    for out in (as_lists, as_dicts):
        assert [o["label"] for o in out] == saved.predicted.tolist()
        assert np.abs(np.array([o["probabilities"]["pos"] for o in out]) - saved.prob_pos.values).max() < 1e-5
    # ftkit predict --data reads the same columns and keeps the input's own
    out = tmp_path / "p.csv"
    assert run_cli("predict", str(pair_run), "--data", str(pairs["test"]), "--out", str(out)).returncode == 0
    frame = pd.read_csv(out)
    assert list(frame.columns[:3]) == ["premise", "hypothesis", "label"]
    assert np.abs(frame.prob_pos.values - saved.prob_pos.values).max() < 1e-5
    # a single --text cannot be a pair: one line, exit 2
    result = run_cli("predict", str(pair_run), "--text", "good film")
    assert result.returncode == 2 and "reads 2 text columns (premise, hypothesis)" in result.stderr


@pytest.mark.parametrize("bad, words", [
    ("good film", "got a single string; this model reads 2 texts per input"),
    (["good film"], "1 text(s), this model reads 2"),
    ({"premise": "good"}, "no 'hypothesis'"),
    ({"premise": "a", "hypothesis": "b", "extra": "c"}, "unknown key 'extra'"),
    (["good", ""], "'hypothesis' is empty"),
    (["good", 3], "'hypothesis' is 3, not a string"),
])
def test_malformed_pair_inputs_are_named(bad, words):
    with pytest.raises(DataError, match=r"inputs\[2\]: ") as err:
        input_segments(bad, ("premise", "hypothesis"), "inputs[2]")
    assert words in str(err.value)


def test_three_columns_fit_and_predict(tiny_model, tmp_path):
    columns = ("title", "premise", "hypothesis")
    data = {"train": write_csv(tmp_path / "train.csv", pair_rows(120, 5, columns)),
            "test": write_csv(tmp_path / "test.csv", pair_rows(40, 6, columns))}
    out = tmp_path / "run"
    result = run_cli(*pair_flags(tiny_model, data, out, "title,premise,hypothesis"))
    assert result.returncode == 0, result.stderr
    saved = pd.read_csv(out / "predictions.csv")
    test = pd.read_csv(data["test"])
    probs = [p["probabilities"]["pos"] for p in ftkit.load(out).predict(test[list(columns)].to_dict("records"))]
    assert np.abs(np.array(probs) - saved.prob_pos.values).max() < 1e-5


def test_linear_probe_and_rank_embed_pairs(pair_run, pairs, tiny_model, tmp_path):
    """The frozen-feature paths (probe, rank) encode pairs through the task: token types included."""
    out = tmp_path / "probe"
    result = run_cli(*pair_flags(tiny_model, pairs, out, "premise,hypothesis", "--strategy", "linear-probe"))
    assert result.returncode == 0, result.stderr
    assert "test" in summary(out)["metrics"]
    tuned = str(pair_run / "model")
    report = ftkit.rank(models=[f"random:{tuned}", tuned], train=str(pairs["train"]), test=str(pairs["test"]),
                        text_column="premise,hypothesis", overrides={"train.threads": 1})
    best, floor = report["models"]
    assert best["candidate"] == tuned  # the fine-tuned body separates the pairs, random weights do not
    assert best["scores"]["probe_accuracy"] > 0.8 > floor["scores"]["probe_accuracy"]


# ---------------------------------------------------------------- doctor

def test_doctor_duplicates_and_leakage_over_the_tuple(tmp_path):
    train, test = pair_rows(40, 7), pair_rows(20, 8)
    train[3] = {**train[3], "premise": test[0]["premise"].upper(), "hypothesis": test[0]["hypothesis"] + "!"}
    train[5] = {**train[5], "premise": train[6]["premise"]}  # same premise, other hypothesis: no duplicate
    train[8] = {**train[8], "premise": train[9]["premise"], "hypothesis": train[9]["hypothesis"]}
    words = train[10]["premise"].split()
    train[11] = {**train[11], "premise": " ".join(words[:1]), "hypothesis": " ".join(words[1:]) + " "
                 + train[10]["hypothesis"]}  # the same words, split elsewhere: a different pair
    train[12]["hypothesis"] = ""
    cfg = build_config(None, {"data.train": str(write_csv(tmp_path / "train.csv", train)),
                              "data.test": str(write_csv(tmp_path / "test.csv", test)),
                              "data.text_column": "premise,hypothesis", "data.validation_size": 0,
                              "data.drop_empty": True, "model.name": "unused"})
    report = diagnose(cfg, get_task(cfg.task), Options(label_noise=False))
    leak = report.get("leakage")
    assert leak.severity == "error" and leak.count == 1
    assert {r["row"] for r in leak.examples} == {5, 2}  # train line 5, test line 2
    dups = report.get("duplicates")
    assert dups.count == 1 and {r["row"] for r in dups.examples} == {10, 11}
    schema = report.get("schema")
    assert "column 'hypothesis'" in schema.message and [r["row"] for r in schema.examples] == [14]
    assert normalise("A b" + SEGMENT_MARK + "c") != normalise("a" + SEGMENT_MARK + "b c")


# ---------------------------------------------------------------- serve and ONNX

def test_serve_takes_pairs_and_refuses_a_malformed_one(pair_run):
    inputs = [["a good film", "the plot was dull"], {"premise": "bad", "hypothesis": "great fun"}]
    local = ftkit.load(pair_run).predict(inputs)
    with serving(pair_run) as client:
        assert client.get("/info").json()["text_columns"] == ["premise", "hypothesis"]
        reply = client.post("/predict", json={"inputs": inputs})
        assert reply.status_code == 200, reply.text
        same_predictions(reply.json()["predictions"], local)
        for body, words in (([["only one"]], "inputs[0]: 1 text(s)"),
                            ([["a", "b"], {"premise": "x"}], "inputs[1]: no 'hypothesis'"),
                            (["a plain string"], "inputs[0]: got a single string")):
            reply = client.post("/predict", json={"inputs": body})
            assert reply.status_code == 422 and words in reply.json()["error"], reply.text
        assert client.post("/predict", json={"inputs": inputs[:1]}).status_code == 200


def test_onnx_export_of_a_pair_model_passes_parity(pair_run, pairs, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = tmp_path / "onnx"
    ftkit.export(pair_run, onnx, format="onnx")
    record = json.loads((onnx / "export.json").read_text())
    assert record["parity"]["max_abs_diff"] <= 1e-4 and record["parity"]["examples"] == 80
    meta = json.loads((onnx / "ftkit.json").read_text())
    assert meta["onnx"]["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    inputs = [["a good film", "the plot was dull"], {"premise": "bad", "hypothesis": "great fun"}]
    same_predictions(ftkit.load(onnx).predict(inputs), ftkit.load(pair_run).predict(inputs))
    # the built-in samples (no check data) are pairs too, with truncation on the long one
    samples = tmp_path / "onnx-samples"
    model_only = tmp_path / "model-only"
    ftkit.export(pair_run, model_only)
    ftkit.export(model_only, samples, format="onnx")
    assert json.loads((samples / "export.json").read_text())["parity"]["inputs"] == "built-in samples"


def test_cross_validation_over_pairs(tiny_model, pairs, tmp_path):
    """cv is an outer loop over the same fit: folds keep duplicate pairs together (the tuple key)."""
    result = ftkit.cv(model=str(tiny_model), train=str(pairs["train"]), text_column="premise,hypothesis",
                      folds=2, out=tmp_path / "cv", quiet=True,
                      overrides={"train.epochs": 5, "train.batch_size": 8, "train.lr": 3e-3, "train.threads": 1})
    assert result["folds"] == 2 and sum(r["n_test"] for r in result["runs"]) == 240  # the folds cover train
    assert result["test"]["accuracy"]["mean"] > 0.6  # each fold learnt the pairs
