"""Reading audio for the speech tasks: any rate and channel count in, mono float32 at the model's
rate out, with errors that name the file and say what to do.

soundfile (libsndfile) reads WAV, FLAC and OGG/Vorbis; soxr resamples (its "HQ" quality, a
well-tested polyphase resampler, rather than a hand-written one). Both are optional
dependencies: `pip install 'ftkit[audio]'`.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftkit.errors import ConfigError, DataError

INSTALL_HINT = "audio needs soundfile and soxr: pip install 'ftkit[audio]'"
SILENCE_PEAK = 1e-4  # a clip whose loudest sample is below this (about -80 dBFS) holds no speech


@dataclass
class Clip:
    """One decoded clip: (n,) float32 samples in [-1, 1] at `rate` Hz, and where it came from."""

    samples: np.ndarray
    rate: int
    path: str
    source_rate: int
    channels: int

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


def read_audio(path: str | Path, rate: int | None, *, where: str | None = None, allow_silent: bool = False) -> Clip:
    """The clip at `path`, mixed down to mono and resampled to `rate` Hz (None: the file's own rate).

    `where` names the row that pointed at the file (e.g. "train.csv line 12") in error messages.
    Unreadable, truncated and empty files are refused; so are silent ones unless `allow_silent`
    (a silent clip with a transcript is a labelling error, not data)."""
    soundfile, soxr = backends()
    path = Path(path)
    named = f"{where}: {path}" if where else str(path)
    if not path.is_file():
        raise DataError(f"{named}: audio file not found (paths in a table are relative to the table)")
    try:
        with _native_stderr_muted(not _plain_container(path)):
            data, source_rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (n, channels)
    except (RuntimeError, soundfile.LibsndfileError) as err:
        raise DataError(f"{named}: not readable audio ({_reason(err)}); convert it to WAV, FLAC or OGG") from None
    if data.shape[0] == 0:
        raise DataError(f"{named}: the audio file holds no samples (empty or truncated); re-export or drop it")
    if not np.isfinite(data).all():
        raise DataError(f"{named}: the audio holds NaN or infinite samples (a damaged float file); re-export or drop it")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not allow_silent and float(np.abs(mono).max()) < SILENCE_PEAK:
        raise DataError(f"{named}: the clip is silent (peak below -80 dBFS); check the recording or drop the row")
    rate = rate or source_rate
    if source_rate != rate:
        mono = soxr.resample(mono, source_rate, rate, quality="HQ")
    return Clip(np.ascontiguousarray(mono, dtype=np.float32), rate, str(path), int(source_rate), int(data.shape[1]))


def _plain_container(path: Path) -> bool:
    """WAV, FLAC, OGG or AIFF by their first bytes: formats libsndfile decodes without chatter."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"RIFF", b"RF64", b"fLaC", b"OggS", b"FORM")
    except OSError:
        return False


@contextlib.contextmanager
def _native_stderr_muted(mute: bool):
    """libmpg123 (inside libsndfile) prints "Note: Illegal Audio-MPEG-Header ..." lines straight to
    file descriptor 2 for a damaged MP3 (or random bytes), under ftkit's one-line error. Muted
    while such a file is decoded; WAV/FLAC/OGG never are, so training-time reads stay untouched."""
    try:
        saved = os.dup(2) if mute else None
    except OSError:
        saved = None
    if saved is None:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def backends():
    try:
        import soundfile
        import soxr
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return soundfile, soxr


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__
