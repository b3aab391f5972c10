"""Audio input for the speech tasks: mono mixdown, resampling, and clear errors on bad files."""
import numpy as np
import pytest

from ftkit.errors import DataError

soundfile = pytest.importorskip("soundfile", reason="make install adds the [audio] extra")
from ftkit.data.audio import read_audio  # noqa: E402


def tone(seconds: float, rate: int, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[spectrum.argmax()])


def test_stereo_44k_becomes_mono_16k_with_the_same_pitch(tmp_path):
    left = tone(1.0, 44100)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, np.zeros_like(left)], axis=1), 44100)  # speech on one channel only
    clip = read_audio(path, 16000)
    assert (clip.rate, clip.source_rate, clip.channels) == (16000, 44100, 2)
    assert clip.samples.ndim == 1 and clip.samples.dtype == np.float32
    assert abs(len(clip.samples) - 16000) <= 2 and clip.seconds == pytest.approx(1.0, abs=1e-3)
    assert peak_hz(clip.samples, 16000) == pytest.approx(440, abs=2)
    assert np.abs(clip.samples).max() == pytest.approx(0.25, abs=0.01)  # the mean of the two channels


@pytest.mark.parametrize("suffix,rate", [(".flac", 8000), (".ogg", 22050), (".wav", 16000)])
def test_each_format_reads_at_the_model_rate(tmp_path, suffix, rate):
    path = tmp_path / f"clip{suffix}"
    soundfile.write(path, tone(0.5, rate, 300.0), rate)
    clip = read_audio(path, 16000)
    assert abs(len(clip.samples) - 8000) <= 2
    assert peak_hz(clip.samples, 16000) == pytest.approx(300, abs=3)


def test_bad_files_are_refused_naming_the_file_and_row(tmp_path):
    good = tmp_path / "good.wav"
    soundfile.write(good, tone(0.5, 16000), 16000)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4000))
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:30])  # cut inside the header
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros((0,), dtype=np.float32), 16000)
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(8000, dtype=np.float32), 16000)
    cases = {corrupt: "not readable audio", truncated: "not readable audio", empty: "no samples",
             silent: "silent", tmp_path / "missing.wav": "not found"}
    for path, message in cases.items():
        with pytest.raises(DataError) as err:
            read_audio(path, 16000, where="train.csv line 7")
        assert message in str(err.value) and path.name in str(err.value) and "train.csv line 7" in str(err.value)
    assert read_audio(silent, 16000, allow_silent=True).seconds == pytest.approx(0.5)
