"""Hostile data files (hypothesis): every reader either returns a table that is really valid or
raises a FtkitError whose message is one line and names the file; never another exception.

Each test counts the inputs it tried; with FTKIT_FUZZ_COUNTS=PATH the counts (inputs, clean
errors, valid results per reader) are written there as JSON (bench/RESULTS.md quotes them).
"""
import csv
import io
import json
import re
import struct
import tempfile
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import save_fuzz_counts
from ftkit.config import FitConfig
from ftkit.data.audio_data import check_clips, transcribed_folder
from ftkit.data.readers import read_table
from ftkit.errors import DataError, FtkitError
from ftkit.tasks.audio_classification import read_clips
from ftkit.tasks.image_classification import load_rgb, read_images
from ftkit.tasks.speech_recognition import read_clips as read_speech
from ftkit.tasks.text_classification import read_examples
from ftkit.tasks.token_classification import read_sentences, tag_scheme

FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])
FILES = settings(FUZZ, max_examples=100)  # examples that decode images or audio
COUNTS: dict[str, Counter] = {}


@pytest.fixture(scope="module", autouse=True)
def write_counts():
    yield
    save_fuzz_counts(COUNTS)


def outcome(reader: str, path: Path, read):
    """Run `read()`: a result, or a one-line FtkitError naming `path`; anything else fails the test."""
    counts = COUNTS.setdefault(reader, Counter())
    counts["inputs"] += 1
    try:
        result = read()
    except FtkitError as err:
        message = str(err)
        assert "\n" not in message and "\r" not in message, message
        assert path.name in message, message
        counts["clean errors"] += 1
        return None
    counts["valid results"] += 1
    return result


# ---------------------------------------------------------------- text tables

WORDS = st.text(alphabet="abc xyz,\"'\n", min_size=1, max_size=12)
FIELD = st.one_of(
    WORDS, WORDS, WORDS,
    st.text(max_size=20),
    st.sampled_from(["", " ", '"', '""', ",", "\t", "\n", "\r\n", "\r", "\x00", "\u2028", "\ufeff", "nan", "NaN",
                     "inf", "-inf", "None", "null", "1", "1.0", "1e400", "é", "😀", 'a"b', '"a', "a,b\nc"]),
    st.text(alphabet="ab,\"\n\t", min_size=1000, max_size=3000),  # long fields
)
COLUMN = st.sampled_from(["text", "label", "text", "label", "other", "", " text ", "Text", "text\nx"])
ENCODING = st.sampled_from(["utf-8"] * 6 + ["utf-8-sig", "latin-1", "utf-16", "utf-16-be", "cp1252", "utf-32"])
HEADER = st.one_of(st.just(["text", "label"]), st.just(["label", "text", "other"]), st.lists(COLUMN, max_size=4))
MISTAKE = st.sampled_from([None] * 4 + ['"', "", "\n\n", '"\n', "\x00", ",", "\t"])


def encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


@st.composite
def delimited(draw, delimiter: str):
    header = draw(HEADER)
    width = max(1, len(header))
    ragged = draw(st.sampled_from([0, 0, 0, -1, 1]))
    rows = draw(st.lists(st.lists(FIELD, min_size=width, max_size=width), max_size=6))
    if rows and ragged:
        rows[-1] = rows[-1][:-1] if ragged < 0 else rows[-1] + ["extra"]
    out = io.StringIO()
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    for row in [header] + rows:
        writer.writerow(row)
    text = out.getvalue()
    mistake = draw(MISTAKE)
    if mistake is not None:  # a hand-made mistake: cut the file short, or add a stray quote or blank lines
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + mistake + text[cut:]
    return encode(text, draw(ENCODING))


@st.composite
def jsonl(draw):
    value = st.one_of(st.text(max_size=10), st.integers(), st.floats(), st.booleans(), st.none(),
                      st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                      st.just(10 ** 20), st.just("x" * 5000))
    record = st.one_of(st.fixed_dictionaries({"text": st.one_of(WORDS, WORDS, value), "label": st.one_of(WORDS, value)}),
                       st.dictionaries(COLUMN, value, max_size=4))
    lines = [json.dumps(r) for r in draw(st.lists(record, max_size=6))]
    lines += draw(st.lists(st.sampled_from(["", "[1, 2]", '"text"', "{", '{"text": "a", "label": NaN}', "[" * 5000,
                                            '{"text": "a\u2028b", "label": "x"}', "null", "{}",
                                            '{"text": "a", "label": ' + "9" * 5000 + "}"]), max_size=1 if draw(st.booleans()) else 0))
    order = draw(st.permutations(lines))
    return encode(draw(st.sampled_from(["\n", "\r\n"])).join(order), draw(ENCODING))


def check_examples(examples):
    assert len(examples) > 0 and len(examples.texts) == len(examples.labels) == len(examples.rows)
    assert all(isinstance(t, str) and t.strip() for t in examples.texts)
    assert all(isinstance(label, str) and label and label == label.strip() for label in examples.labels)


def read_hostile(reader: str, suffix: str, data: bytes, read):
    """Write `data` to a file with `suffix` and pass it to `read(path)` through `outcome`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"hostile{suffix}"
        path.write_bytes(data)
        return outcome(reader, path, lambda: read(path))


def read_text_table(reader: str, suffix: str, data: bytes, drop_empty: bool) -> None:
    """`data` read as a text-classification table: a valid one, or a clean error."""
    result = read_hostile(reader, suffix, data, lambda path: read_examples(str(path), "text", "label", drop_empty))
    if result is not None:
        check_examples(result)


@FUZZ
@given(data=st.one_of(delimited(","), st.binary(max_size=300)), drop_empty=st.booleans())
def test_csv(data, drop_empty):
    read_text_table("csv", ".csv", data, drop_empty)


@FUZZ
@given(data=st.one_of(delimited("\t"), st.binary(max_size=300)))
def test_tsv(data):
    read_text_table("tsv", ".tsv", data, False)


@FUZZ
@given(data=st.one_of(jsonl(), st.binary(max_size=300)), drop_empty=st.booleans())
def test_jsonl(data, drop_empty):
    read_text_table("jsonl", ".jsonl", data, drop_empty)


CELL = st.one_of(st.text(max_size=8), st.none(), st.floats(), st.integers(-10, 10), st.booleans())


@st.composite
def parquet(draw):
    """A real Parquet file with mixed-type columns, or one whose bytes were cut or overwritten."""
    n = draw(st.sampled_from([0, 1, 2, 3, 5, 5]))
    columns = draw(st.one_of(st.just(["text", "label"]),
                             st.lists(st.sampled_from(["text", "label", "other"]), min_size=1, max_size=3, unique=True)))
    frame = pd.DataFrame(index=range(n))
    for c in columns:
        cells = draw(st.lists(st.one_of(st.sampled_from(["a", "b", "c d"]), CELL), min_size=n, max_size=n))
        as_text = draw(st.booleans())  # a column of strings (and None), or of mixed types
        frame[c] = pd.Series([None if v is None or not as_text else str(v) for v in cells] if as_text else cells,
                             dtype=object)
    if "label" in columns and draw(st.booleans()):
        frame["label"] = draw(st.lists(st.sampled_from([1.0, np.nan, np.inf, -np.inf, 2.0]), min_size=n, max_size=n))
    if "text" in columns and draw(st.sampled_from([False, False, False, True])):
        frame["text"] = [["a", "b"]] * n  # a list column
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer)
    except Exception:  # noqa: BLE001  (pyarrow cannot store every mix of types; that file cannot exist)
        frame.astype(str).to_parquet(buffer)
    raw = bytearray(buffer.getvalue())
    damage = draw(st.sampled_from(["none", "none", "none", "none", "cut", "flip"]))
    if damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif damage == "flip":
        for at in draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            raw[at] ^= 0xFF
    return bytes(raw)


@FUZZ
@given(data=parquet())
def test_parquet(data):
    read_text_table("parquet", ".parquet", data, False)


@FUZZ
@given(rows=st.lists(st.tuples(st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30)
                               .filter(str.strip),
                               st.text(min_size=1, max_size=10).filter(lambda s: s.strip() and "\x00" not in s)),
                     min_size=1, max_size=8),
       kind=st.sampled_from(["csv", "tsv", "jsonl", "parquet"]))
def test_well_formed_tables_read_back_exactly(rows, kind):
    """The correct-result half: a table any tool would write is read back as written."""
    frame = pd.DataFrame(rows, columns=["text", "label"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"good.{kind}"
        if kind == "parquet":
            frame.to_parquet(path)
        elif kind == "jsonl":
            frame.to_json(path, orient="records", lines=True, force_ascii=False)
        else:
            with open(path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f, delimiter="\t" if kind == "tsv" else ",").writerows([["text", "label"], *rows])
        examples = outcome("well-formed tables", path, lambda: read_examples(str(path), "text", "label", False))
        assert examples is not None
        assert examples.texts == [t for t, _ in rows]
        assert examples.labels == [label.strip() for _, label in rows]


def test_csv_fixed_cases(tmp_path):
    """The crashes the fuzzing found, kept as plain examples."""
    cases = {
        "dup.csv": (b"text,text,label\na,b,c\n", "column 'text' appears more than once"),
        "deep.jsonl": (b'{"text": ' + b"[" * 100_000 + b"\n", "line 1: not valid JSON"),
        "u16.csv": ("text,label\na,b\n".encode("utf-16"), "line 1: the file is UTF-16 text"),
        "newline_header.csv": (b'"te\nxt",label\na,b\n', r"columns are: te\nxt, label"),
        "list.jsonl": (b'{"text": ["a"], "label": "x"}\n', "line 1: column 'text' holds a list ['a'], not text"),
        "inf.jsonl": (b'{"text": "a", "label": Infinity}\n', "line 1: label inf in column 'label' is not a class name"),
        "bigint.jsonl": (b'{"text": "a", "label": ' + b"9" * 5000 + b"}\n", "line 1: not valid JSON"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataError, match=re.escape(message)) as err:
            read_examples(str(tmp_path / name), "text", "label", False)
        assert "\n" not in str(err.value)
    good = {
        "huge.csv": b"text,label\n" + b"a" * 300_000 + b",x\n",  # over the csv module's 128 KiB default
        "blank_first.csv": b"\n\ntext,label\na,b\n",
        "sep.jsonl": '{"text": "a\u2028b", "label": "x"}\n'.encode(),  # U+2028 is no line break in JSONL
    }
    for name, content in good.items():
        (tmp_path / name).write_bytes(content)
        assert len(read_examples(str(tmp_path / name), "text", "label", False)) == 1
    assert read_table(tmp_path / "blank_first.csv").where(0).endswith("line 4")


# ---------------------------------------------------------------- token classification

@st.composite
def conll(draw):
    token = st.text(alphabet=st.characters(exclude_characters="\n\r"), max_size=6)
    tag = st.sampled_from(["O", "B-PER", "I-PER", "E-LOC", "S-LOC"] * 3 + ["B-", "X-PER", "PER", "", "o"])
    lines = []
    kinds = ["token"] * 6 + ["blank", "docstart"] + ([] if draw(st.booleans()) else ["wide", "bare"])
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(kinds))
        if kind == "token":
            lines.append(draw(token) + draw(st.sampled_from(["\t", " ", "  "])) + draw(tag))
        elif kind == "blank":
            lines.append(draw(st.sampled_from(["", " ", "\t"])))
        elif kind == "docstart":
            lines.append("-DOCSTART- -X- O O")
        elif kind == "wide":
            lines.append("\t".join([draw(token), "NN", "B-NP", draw(tag)]))
        else:
            lines.append(draw(token))
    return encode(draw(st.sampled_from(["\n", "\r\n"])).join(lines), draw(ENCODING))


@st.composite
def ner_jsonl(draw):
    words = st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=4)
    tag = st.sampled_from(["O", "B-PER", "I-PER", "S-LOC", "B-", "PER"])
    sentence = st.lists(st.tuples(st.text(min_size=1, max_size=5), tag), min_size=1, max_size=4).map(
        lambda pairs: {"tokens": [w for w, _ in pairs], "tags": [t for _, t in pairs]})
    odd = st.fixed_dictionaries({}, optional={"tokens": st.one_of(words, st.text(max_size=3)),
                                              "tags": st.one_of(words, st.none())})
    records = draw(st.lists(st.one_of(sentence, sentence, odd), max_size=5))
    lines = [json.dumps(r) for r in records] + draw(st.lists(st.sampled_from(["[" * 5000, "{", "[]", "1"]),
                                                             max_size=draw(st.sampled_from([0, 0, 1]))))
    return encode("\n".join(lines), draw(ENCODING))


def check_sentences(path: Path):
    sentences = read_sentences(str(path))
    tag_scheme(sentences)  # what prepare_data checks next
    assert len(sentences) and all(len(w) == len(t) > 0 for w, t in zip(sentences.tokens, sentences.tags))
    return sentences


@FUZZ
@given(data=st.one_of(conll(), st.binary(max_size=200)))
def test_conll(data):
    read_hostile("conll", ".conll", data, check_sentences)


@FUZZ
@given(data=st.one_of(ner_jsonl(), st.binary(max_size=200)))
def test_ner_jsonl(data):
    read_hostile("ner jsonl", ".jsonl", data, check_sentences)


# ---------------------------------------------------------------- image and audio tables

def png_bytes(size=(6, 4), mode="RGB") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, 128).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg_bytes() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def wav_bytes(samples=None, rate: int = 8000, width: int = 2) -> bytes:
    samples = np.sin(np.arange(800) / 5) * 0.5 if samples is None else samples
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1), w.setsampwidth(width), w.setframerate(rate)
        w.writeframes((samples * 30000).astype("<i2").tobytes())
    return buffer.getvalue()


def float_wav_bytes(samples) -> bytes:
    """A 32-bit float WAV (format 3), which can hold NaN and infinities."""
    data = np.asarray(samples, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 32000, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


PNG, JPEG, WAV = png_bytes(), jpeg_bytes(), wav_bytes()
CONTENTS = {
    "png": PNG, "png_gray": png_bytes(mode="L"), "png_1px": png_bytes((1, 1)), "jpeg": JPEG, "wav": WAV,
    "wav_8bit_header": wav_bytes(width=2)[:44], "wav_silent": wav_bytes(np.zeros(800)),
    "wav_nan": float_wav_bytes([0.5, np.nan] * 200), "wav_inf": float_wav_bytes([0.5, np.inf] * 200),
    "empty": b"", "random": bytes(range(256)) * 3, "flac_magic": b"fLaC" + bytes(60), "riff_junk": b"RIFF" + bytes(40),
    "png_magic": b"\x89PNG\r\n\x1a\n not really a png", "jpeg_magic": b"\xff\xd8\xff\xe0" + bytes(30),
}


@st.composite
def media_table(draw, kinds):
    """A folder with files that may be truncated, empty or lie about their format, and a CSV naming them."""
    files = {}
    clean = draw(st.booleans())  # half the tables are fine but for the odd detail, so reading goes deep
    good = ["png", "jpeg", "png_1px"] if kinds[0] != ".wav" else ["wav"]
    for i in range(draw(st.integers(1, 4))):
        content = CONTENTS[draw(st.sampled_from(good if clean else good * 4 + sorted(CONTENTS)))]
        if not clean and draw(st.sampled_from([False, False, True])) and content:
            content = content[: draw(st.integers(0, len(content)))]  # truncated
        files[f"f{i}{draw(st.sampled_from(kinds[:1] * 3 + kinds))}"] = content
    odd = ["missing.png", "../outside.wav", "/etc/hostname", "", " ", "sub/../f0.png", "x" * 300, "a\x00b", "."]
    name = st.one_of(st.sampled_from(sorted(files)), st.sampled_from(sorted(files)), st.sampled_from(odd))
    label = st.sampled_from(["a", "b", "a", "b", "", "nan", "1"])
    if clean:
        name, label = st.sampled_from(sorted(files)), st.sampled_from(["a", "b"])
    rows = draw(st.lists(st.tuples(name, label), min_size=1 if clean else draw(st.sampled_from([0, 1, 1, 1])),
                         max_size=5))
    header = draw(st.sampled_from([["path", "label"]] * (9 if clean else 4) + [["path"], ["label", "path"], ["file", "label"]]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for name, label in rows:
        writer.writerow([name, label][: len(header)] if header[0] == "path" else [label, name][: len(header)])
    return files, out.getvalue(), draw(st.booleans()), draw(st.booleans())


def write_media(folder: Path, files: dict, table: str) -> Path:
    (folder / "data").mkdir()
    (folder / "outside.wav").write_bytes(WAV)  # what "../outside.wav" finds
    for name, content in files.items():
        (folder / "data" / name).write_bytes(content)
    (folder / "data" / "hostile.csv").write_text(table)
    return folder / "data" / "hostile.csv"


def check_inside(paths, folder: Path, allow_outside: bool):
    for p in paths:
        assert Path(p).is_file()
        assert allow_outside or Path(p).resolve().is_relative_to(folder.resolve()), p


@FILES
@given(case=media_table([".png", ".jpg", ".gif", ".wav", ".PNG"]))
def test_image_table(case):
    files, table, skip_bad, allow_outside = case
    with tempfile.TemporaryDirectory() as folder:
        path = write_media(Path(folder), files, table)
        result = outcome("image table", path, lambda: read_images(str(path), "path", "label", skip_bad, allow_outside))
        if result is not None:
            check_inside(result.paths, path.parent, allow_outside)
            for p in result.paths:
                load_rgb(p)  # every image kept decodes


@FILES
@given(case=media_table([".wav", ".flac", ".ogg", ".mp3", ".png"]))
def test_audio_table(case):
    files, table, skip_bad, allow_outside = case
    with tempfile.TemporaryDirectory() as folder:
        path = write_media(Path(folder), files, table)
        result = outcome("audio table", path, lambda: read_clips(str(path), "path", "label", skip_bad, None, allow_outside))
        if result is not None:
            check_inside(result.paths, path.parent, allow_outside)
            assert len(result.seconds) == len(result.paths) and all(s > 0 for s in result.seconds)


@FILES
@given(case=media_table([".wav", ".flac", ".jpg"]), max_seconds=st.sampled_from([None, 0.05, 30.0]))
def test_speech_table(case, max_seconds):
    files, table, skip_bad, allow_outside = case
    table = table.replace("label", "text")
    with tempfile.TemporaryDirectory() as folder:
        path = write_media(Path(folder), files, table)
        cfg = FitConfig.model_validate({"data": {"audio_column": "path", "text_column": "text", "skip_bad": skip_bad,
                                                 "allow_outside_paths": allow_outside}})
        result = outcome("speech table", path, lambda: read_speech(str(path), cfg, max_seconds=max_seconds))
        if result is not None:
            check_inside(result.paths, path.parent, allow_outside)
            assert all(t.strip() for t in result.transcripts)


@FILES
@given(names=st.lists(st.tuples(st.sampled_from(["f0", "f0.wav", "../outside", "missing", "/", "x" * 300, "f1"]),
                                st.sampled_from(["\t", ": ", " ", ":", ""]),
                                st.sampled_from(["hello there", "", " ", "# x"])), max_size=4),
       contents=st.lists(st.sampled_from(sorted(CONTENTS)), min_size=2, max_size=2),
       encoding=ENCODING)
def test_transcripts_txt(names, contents, encoding):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "clips").mkdir()
        (root / "outside.wav").write_bytes(WAV)
        for i, kind in enumerate(contents):
            (root / "clips" / f"f{i}.wav").write_bytes(CONTENTS[kind])
        path = root / "clips" / "transcripts.txt"
        path.write_bytes(encode("\n".join(a + b + c for a, b, c in names), encoding))
        outcome("transcripts.txt", path,
                lambda: check_clips(transcribed_folder(root / "clips", "audio", "text"), skip_bad=False))


# ---------------------------------------------------------------- paths outside the table's folder

def outside_cases(root: Path, name: str, content: bytes) -> dict:
    """Ways a table row can point outside its folder: `..`, an absolute path, a symlink."""
    (root / "data").mkdir()
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / name).write_bytes(content)
    (root / "data" / "link").symlink_to(root / "elsewhere")
    return {"dotdot": f"../elsewhere/{name}", "absolute": str(root / "elsewhere" / name), "symlink": f"link/{name}"}


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
@pytest.mark.parametrize("kind", ["image", "audio", "speech"])
def test_paths_outside_the_table_folder_need_the_setting(tmp_path, kind, how):
    name, content = ("x.png", PNG) if kind == "image" else ("x.wav", WAV)
    value = outside_cases(tmp_path, name, content)[how]
    (tmp_path / "data" / name).write_bytes(content)  # an inside row too, so two classes exist
    column, other = ("image", "label") if kind == "image" else ("audio", "text" if kind == "speech" else "label")
    path = tmp_path / "data" / "t.csv"
    path.write_text(f"{column},{other}\n{name},a\n{value},b\n")

    def read(allow: bool):
        if kind == "image":
            return read_images(str(path), column, other, False, allow_outside=allow)
        if kind == "audio":
            return read_clips(str(path), column, other, allow_outside=allow)
        cfg = FitConfig.model_validate({"data": {"allow_outside_paths": allow}})
        return read_speech(str(path), cfg)

    with pytest.raises(DataError) as err:
        read(False)
    message = str(err.value)
    assert f"{path} line 3:" in message and f"column {column!r}" in message and "outside" in message
    assert "--set data.allow_outside_paths=true" in message and "\n" not in message
    assert len(read(True)) == 2


def test_outside_paths_through_prepare_data_and_transcripts_txt(tmp_path):
    from ftkit.config import build_config
    from ftkit.tasks import get_task

    value = outside_cases(tmp_path, "x.png", PNG)["dotdot"]
    rows = ""
    for i in range(10):  # distinct images (identical ones would share a split group)
        (tmp_path / "data" / f"in{i}.png").write_bytes(png_bytes((i + 1, 4)))
        (tmp_path / "elsewhere" / f"x{i}.png").write_bytes(png_bytes((4, i + 2)))
        rows += f"in{i}.png,a\n{value.replace('x.png', f'x{i}.png')},b\n"
    (tmp_path / "data" / "t.csv").write_text("image,label\n" + rows)
    flags = {"task": "image-classification", "data.train": str(tmp_path / "data" / "t.csv")}
    with pytest.raises(DataError, match=r"t.csv line 3: image '../elsewhere/x0.png' in column 'image' is outside"):
        get_task("image-classification").prepare_data(build_config(flags=flags))
    cfg = build_config(flags=flags, sets=["data.allow_outside_paths=true"])
    assert len(get_task("image-classification").prepare_data(cfg).train) > 0

    (tmp_path / "data" / "in.wav").write_bytes(WAV)
    (tmp_path / "elsewhere" / "y.wav").write_bytes(WAV)
    (tmp_path / "data" / "transcripts.txt").write_text("in\thello\n../elsewhere/y\tthere\n")
    with pytest.raises(DataError, match=r"transcripts.txt line 2: audio file '../elsewhere/y' is outside"):
        transcribed_folder(tmp_path / "data", "audio", "text")
    assert len(transcribed_folder(tmp_path / "data", "audio", "text", allow_outside=True)) == 2


def test_damaged_float_audio_is_refused(tmp_path):
    (tmp_path / "nan.wav").write_bytes(float_wav_bytes([0.5, np.nan] * 100))
    (tmp_path / "t.csv").write_text("audio,label\nnan.wav,a\n")
    with pytest.raises(DataError, match=r"t.csv line 2: .*nan.wav: the audio holds NaN or infinite samples"):
        read_clips(str(tmp_path / "t.csv"), "audio", "label")


# ---------------------------------------------------------------- the real CLI

def cli_refuses(tmp_path, *args):
    """exit 2, one stderr line, and no run folder (not even a half-written one)."""
    from conftest import run_cli

    out = tmp_path / "run"
    result = run_cli("fit", *args, "--out", out, "--quiet")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))
    return lines[0]


@pytest.mark.parametrize("name, content, message", [
    ("dup.csv", b"text,text,label\na,b,c\nd,e,f\n", "dup.csv: column 'text' appears more than once"),
    ("deep.jsonl", b'{"text": "a", "label": "b"}\n' + b"[" * 50_000 + b"\n", "deep.jsonl line 2: not valid JSON"),
    ("utf16.csv", "text,label\nbon,pos\nmal,neg\n".encode("utf-16"), "utf16.csv line 1: the file is UTF-16 text"),
    ("inf.jsonl", b'{"text": "a", "label": "x"}\n{"text": "b", "label": -Infinity}\n', "inf.jsonl line 2: label"),
])
def test_cli_refuses_hostile_text_tables(tmp_path, tiny_model, name, content, message):
    (tmp_path / name).write_bytes(content)
    assert message in cli_refuses(tmp_path, "--model", tiny_model, "--train", tmp_path / name)


def test_cli_refuses_a_wav_named_png_and_an_outside_path(tmp_path):
    (tmp_path / "d").mkdir()
    for i in range(4):
        (tmp_path / "d" / f"{i}.png").write_bytes(PNG)
    (tmp_path / "d" / "4.png").write_bytes(WAV)
    (tmp_path / "d" / "t.csv").write_text("image,label\n" + "".join(f"{i}.png,{'ab'[i % 2]}\n" for i in range(5)))
    message = cli_refuses(tmp_path, "--task", "image-classification", "--model", "efficientnet-lite0",
                          "--train", tmp_path / "d" / "t.csv")
    assert "4.png" in message and "t.csv line 6" in message and "cannot read the image" in message
    (tmp_path / "elsewhere.png").write_bytes(PNG)
    (tmp_path / "d" / "t.csv").write_text("image,label\n0.png,a\n1.png,b\n../d/2.png,a\n" + f"{tmp_path}/elsewhere.png,b\n")
    message = cli_refuses(tmp_path, "--task", "image-classification", "--model", "efficientnet-lite0",
                          "--train", tmp_path / "d" / "t.csv")
    assert "t.csv line 4" not in message  # ../d/2.png comes back into the folder: fine
    assert "t.csv line 5: image" in message and "data.allow_outside_paths=true" in message


def test_cli_refuses_random_bytes_named_wav(tmp_path):
    (tmp_path / "d").mkdir()
    for i in range(4):
        (tmp_path / "d" / f"{i}.wav").write_bytes(WAV)
    (tmp_path / "d" / "4.wav").write_bytes(bytes(range(256)))
    (tmp_path / "d" / "t.csv").write_text("audio,label\n" + "".join(f"{i}.wav,{'ab'[i % 2]}\n" for i in range(5)))
    message = cli_refuses(tmp_path, "--task", "audio-classification", "--model", "no-such-model",
                          "--train", tmp_path / "d" / "t.csv")
    assert "t.csv line 6" in message and "4.wav: not readable audio" in message


def test_a_damaged_mp3_prints_nothing_under_the_error(tmp_path, capfd):
    """libmpg123 writes 'Note: Illegal Audio-MPEG-Header' to fd 2; the CLI's one error line must stay alone."""
    (tmp_path / "bad.mp3").write_bytes(bytes(72) + bytes(range(256)) * 3)
    (tmp_path / "t.csv").write_text("audio,label\nbad.mp3,a\n")
    with pytest.raises(DataError, match=r"t.csv line 2: .*bad.mp3: not readable audio"):
        read_clips(str(tmp_path / "t.csv"), "audio", "label")
    assert capfd.readouterr().err == ""
