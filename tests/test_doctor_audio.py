"""The data doctor on the speech tasks: copies of a clip (byte-identical, or the same samples as
FLAC / float WAV) are duplicates or leakage, one clip with two transcripts is a conflict, very
short and too long clips are outliers; near-duplicates, imbalance (speech recognition) and label
noise are reported as skipped; splits ftkit makes keep copies of a clip together."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ftkit.config import DataConfig, FitConfig, ModelConfig
from ftkit.data.audio_data import AudioExamples
from ftkit.data.doctor import Context, Options, check_data, fast_report, parts_of, run_checks
from ftkit.data.splits import holdout, same_input_keys
from ftkit.errors import DataError
from ftkit.tasks import get_task
from ftkit.tasks.base import Splits

sf = pytest.importorskip("soundfile")

RATE = 16000


def tone(path: Path, freq: float, seconds: float = 0.5, rate: int = RATE, subtype: str = "PCM_16",
         noise: float = 0.0) -> str:
    """A sine (plus seeded noise) written as 16-bit samples, so every format holds the same ones."""
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t) + noise * np.random.default_rng(int(freq)).standard_normal(len(t))
    samples = np.clip(np.round(x * 32767), -32768, 32767).astype(np.int16)
    sf.write(str(path), samples, rate, subtype=subtype)
    return str(path)


def clips(paths: list[str], transcripts=None, labels=None, name: str = "train.csv") -> AudioExamples:
    return AudioExamples(list(paths), transcripts, labels, name, list(range(2, len(paths) + 2)))


def asr_cfg(**data) -> FitConfig:
    return FitConfig(task="speech-recognition", data=DataConfig(**data))


@pytest.fixture()
def wavs(tmp_path) -> dict:
    """Distinct tones, a byte copy of `a`, and `b`'s samples again as FLAC and as float WAV."""
    out = {f"t{i}": tone(tmp_path / f"t{i}.wav", 300 + 97 * i, noise=0.05) for i in range(6)}
    out["a"] = tone(tmp_path / "a.wav", 440)
    out["b"] = tone(tmp_path / "b.wav", 660, noise=0.1)
    out["a_copy"] = str(shutil.copy(out["a"], tmp_path / "a_copy.wav"))
    samples, rate = sf.read(out["b"], dtype="int16")
    sf.write(str(tmp_path / "b.flac"), samples, rate)
    sf.write(str(tmp_path / "b_float.wav"), samples.astype(np.float32) / 32768, rate, subtype="FLOAT")
    out["b_flac"], out["b_float"] = str(tmp_path / "b.flac"), str(tmp_path / "b_float.wav")
    return out


def test_duplicates_exact_and_same_samples(wavs):
    train = [wavs[k] for k in ("t0", "t1", "a", "a_copy", "b", "b_flac", "b_float")]
    splits = Splits(clips(train, [f"words {i}" for i in range(len(train))]), None, None, [])
    report = fast_report(asr_cfg(), splits)
    dup = report.get("duplicates")
    assert dup.severity == "warn" and dup.count == 3  # a_copy, b_flac, b_float
    kinds = sorted(d["kind"] for d in dup.details)
    assert kinds == ["exact", "normalised"]  # a == a_copy byte for byte; b's samples in 3 files
    b_group = next(d for d in dup.details if d["kind"] == "normalised")
    assert sorted(r["row"] for r in b_group["rows"]) == [6, 7, 8]
    assert report.get("leakage").severity == "ok"


def test_speech_recognition_leakage_is_refused(wavs):
    train = clips([wavs[f"t{i}"] for i in range(4)] + [wavs["a"]], [f"say {i}" for i in range(5)])
    test = clips([wavs["t5"], wavs["b_flac"]], ["five", "bee"], name="test.csv")
    validation = clips([wavs["b"]], ["bee"], name="validation.csv")
    cfg = asr_cfg()
    splits = Splits(train, validation, test, [])
    report = fast_report(cfg, splits)
    leak = report.get("leakage")
    assert leak.severity == "error" and leak.count == 1
    assert [r["split"] for r in leak.details[0]["rows"]] == ["validation", "test"]
    assert leak.details[0]["kind"] == "normalised"  # WAV vs FLAC: the same samples, other bytes
    with pytest.raises(DataError, match="also occur in another split"):
        check_data(cfg, splits)
    allowed = asr_cfg(allow_leakage=True)
    assert check_data(allowed, splits).get("leakage").severity == "error"  # reported, not refused


def test_one_clip_two_transcripts_is_a_conflict(wavs):
    train = clips([wavs["t0"], wavs["a"], wavs["a_copy"], wavs["t1"]],
                  ["hello there", "turn the lights on", "turn the light off", "goodbye"])
    report = fast_report(asr_cfg(), Splits(train, None, None, []))
    conflict = report.get("conflicts")
    assert conflict.severity == "warn" and conflict.count == 2
    assert conflict.details[0]["labels"] == ["turn the light off", "turn the lights on"]
    assert "transcript" in conflict.message
    # transcripts are not classes: no "label with a single example" warning for each of them
    assert report.get("schema").severity == "ok"


def test_speech_recognition_skips_what_does_not_apply(wavs):
    train = clips([wavs[f"t{i}"] for i in range(4)], ["one", "two", "three", "four"])
    report = fast_report(asr_cfg(), Splits(train, None, None, []))
    for name in ("near-duplicates", "near-leakage", "imbalance"):
        assert report.get(name).severity == "skipped", name
    assert "near-duplicate audio is not checked" in report.get("near-duplicates").message
    assert report.get("duplicates").severity == "ok" and report.get("outliers").severity == "ok"
    ctx = Context("speech-recognition", parts_of(Splits(train, None, None, [])), [], asr_cfg(),
                  Options())
    noise = run_checks(ctx, ("label-noise",)).get("label-noise")
    assert noise.severity == "skipped" and "speech recognition" in noise.message


def test_too_long_and_too_short_clips(tmp_path, wavs):
    long = tone(tmp_path / "long.wav", 500, seconds=3.0)
    short = tone(tmp_path / "short.wav", 500, seconds=0.05)
    paths = [wavs["t0"], wavs["t1"], long, short]
    train = clips(paths, ["a", "b", "c", "d"])
    report = fast_report(asr_cfg(max_audio_seconds=2.0), Splits(train, None, None, []))
    out = report.get("outliers")
    assert out.severity == "warn" and out.count == 2
    assert {(d["row"], d["problem"]) for d in out.details} == {(4, "long"), (5, "short")}
    assert "1 clip(s) shorter than 0.1 s" in out.message and "1 longer than 2 s" in out.message
    # no limit set and not a Whisper model: only the short clip
    assert fast_report(asr_cfg(), Splits(train, None, None, [])).get("outliers").count == 1
    # durations from AudioExamples.seconds when check_clips filled them
    train.seconds = [0.5, 0.5, 0.5, 40.0]
    whisper = FitConfig(task="speech-recognition", model=ModelConfig(name="openai/whisper-tiny"))
    out = fast_report(whisper, Splits(train, None, None, [])).get("outliers")
    assert [(d["row"], d["problem"]) for d in out.details] == [(5, "long")]
    assert "Whisper" in out.message


def test_whisper_window_from_file_header(tmp_path):
    long = tone(tmp_path / "long.wav", 200, seconds=31.0, rate=1000)
    ok = tone(tmp_path / "ok.wav", 300, seconds=29.0, rate=1000)
    cfg = FitConfig(task="speech-recognition", model=ModelConfig(name="whisper-base"))
    out = fast_report(cfg, Splits(clips([long, ok], ["long one", "fine"]), None, None, [])).get("outliers")
    assert out.count == 1 and out.details[0]["seconds"] == 31.0


def test_audio_classification_imbalance_and_label_noise(wavs):
    paths = [wavs[f"t{i}"] for i in range(6)] + [wavs["a"], wavs["b"]]
    labels = ["yes"] * 7 + ["no"]
    cfg = FitConfig(task="audio-classification")
    report = fast_report(cfg, Splits(clips(paths, labels=labels), None, None, ["no", "yes"]))
    imbalance = report.get("imbalance")
    assert imbalance.severity == "warn" and "ratio 7.0" in imbalance.message
    schema = report.get("schema")  # "no" has a single example
    assert schema.severity == "warn" and "'no'" in schema.message
    ctx = Context("audio-classification", parts_of(Splits(clips(paths, labels=labels), None, None, ["no", "yes"])),
                  ["no", "yes"], cfg, Options(), reader=get_task("audio-classification"))
    assert ctx.parts[0].kind == "audio"
    noise = run_checks(ctx, ("label-noise",)).get("label-noise")  # the default model is a text encoder
    assert noise.severity == "skipped" and "audio encoder" in noise.message and noise.fix


def test_audio_classification_conflict(wavs):
    paths = [wavs["t0"], wavs["t1"], wavs["b"], wavs["b_flac"]]
    cfg = FitConfig(task="audio-classification")
    report = fast_report(cfg, Splits(clips(paths, labels=["yes", "no", "yes", "no"]), None, None, ["no", "yes"]))
    assert report.get("conflicts").count == 2 and "different labels" in report.get("conflicts").message


def test_skipped_clips_in_schema(wavs):
    train = clips([wavs["t0"], wavs["t1"]], ["one", "two"])
    train.skipped = {"unreadable": 2, "too long": 1}
    splits = Splits(train, None, None, [])
    schema = fast_report(asr_cfg(skip_bad=True), splits).get("schema")
    assert schema.severity == "warn" and schema.count == 3
    assert "3 audio clip(s) skipped (train: 2 unreadable, 1 too long)" in schema.message
    # counts the task keeps in the record win (a split's subset does not carry .skipped)
    splits.record = {"skipped": {"train": {"unreadable": 1}}}
    assert fast_report(asr_cfg(skip_bad=True), splits).get("schema").count == 1
    # read leniently by `ftkit doctor` without data.skip_bad: fit would stop there
    assert fast_report(asr_cfg(), splits).get("schema").severity == "error"


def test_same_input_keys_groups_copies(wavs):
    paths = [wavs[k] for k in ("a", "t0", "a_copy", "b", "t1", "b_flac", "t2", "b_float", "t3", "t4")]
    examples = clips(paths, [f"x {i}" for i in range(len(paths))])
    keys = same_input_keys(examples)
    assert keys[0] == keys[2] and keys[3] == keys[5] == keys[7]
    assert len(set(keys)) == 7
    for seed in range(5):
        _, held = holdout([0] * len(paths), 0.3, seed, keys)
        side = {i: i in held for i in range(len(paths))}
        assert side[0] == side[2] and side[3] == side[5] == side[7]


def test_unreadable_file_falls_back_to_bytes(tmp_path, wavs):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    copy = shutil.copy(bad, tmp_path / "bad_copy.wav")
    examples = clips([str(bad), str(copy), wavs["t0"]], ["a", "b", "c"])
    keys = same_input_keys(examples)
    assert keys[0] == keys[1] != keys[2]
