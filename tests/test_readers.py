import pandas as pd
import pytest

from ftkit.data.readers import read_table
from ftkit.data.splits import holdout
from ftkit.errors import DataError


def test_csv_keeps_exact_line_numbers_with_multiline_fields(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('text,label\n"two\nlines",x\nplain,y\n')
    table = read_table(path)
    assert table.frame["text"].tolist() == ["two\nlines", "plain"]
    assert table.where(1) == f"{path} line 4"


def test_tsv_jsonl_parquet_read_the_same_rows(tmp_path):
    rows = pd.DataFrame({"text": ["a b", "c"], "label": ["x", "y"]})
    rows.to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    rows.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    rows.to_parquet(tmp_path / "a.parquet")
    for name in ("a.tsv", "a.jsonl", "a.parquet"):
        assert read_table(tmp_path / name).frame["text"].tolist() == ["a b", "c"]
    assert read_table(tmp_path / "a.parquet").where(1).endswith("row 2")


@pytest.mark.parametrize("content, message", [
    (b"text,label\nok,x\ntoo,many,fields\n", "line 3: 3 fields but the header has 2"),
    (b"text,label\nok,x\nbad \xe9 byte,y\n", "line 3: byte 0xe9 is not valid UTF-8"),
    (b"text,label\n", "no data rows"),
    (b"", "file is empty"),
])
def test_csv_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "d.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_jsonl_bad_line_and_unknown_extension(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a"}\n{"text": \n')
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        read_table(path)
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DataError, match="unknown file type '.txt'"):
        read_table(tmp_path / "d.txt")
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "missing.csv")


def test_holdout_is_stratified_seeded_and_disjoint():
    labels = ["a"] * 80 + ["b"] * 20
    keep, held = holdout(labels, 0.2, seed=3)
    assert set(keep).isdisjoint(held) and len(keep) + len(held) == 100
    assert sorted(labels[i] for i in held).count("b") == 4  # class ratio kept
    assert holdout(labels, 0.2, seed=3) == (keep, held)
    assert holdout(labels, 0.2, seed=4) != (keep, held)


def test_holdout_on_too_few_rows_says_what_to_do():
    with pytest.raises(DataError, match="data.validation_size=0"):
        holdout(["a", "a", "b", "b", "c", "c"], 0.9, seed=0)
