"""Training-time augmentation for the speech tasks: waveform transforms on each training clip
(speed perturbation, gain, white noise) and switching on the SpecAugment masking that Whisper
and wav2vec2-style models already implement (they mask only in train mode, so evaluation is clean).

Speed perturbation resamples with soxr (as audio.py does) instead of a hand-written resampler.
"""
from __future__ import annotations

import numpy as np

from ftkit.config import AudioAugmentConfig
from ftkit.data.audio import backends

# Filled in only where a config has them at 0: Whisper ships mask_time_prob 0.05 but
# mask_feature_prob 0 (and apply_spec_augment False); spans of 10 as in HF's Whisper/wav2vec2 docs.
SPEC_AUGMENT_DEFAULTS = {"mask_time_prob": 0.05, "mask_time_length": 10,
                         "mask_feature_prob": 0.05, "mask_feature_length": 10}
REPORTED = ("apply_spec_augment", *SPEC_AUGMENT_DEFAULTS, "mask_time_min_masks")


class AudioAugment:
    """Random speed -> gain -> noise on a (n,) float32 clip at `rate` Hz; each transform with
    probability cfg.prob. All randomness comes from the caller's rng, so a seeded loader
    reproduces the same clips on resume."""

    def __init__(self, cfg: AudioAugmentConfig, rate: int):
        self.cfg = cfg
        self.rate = rate

    @property
    def active(self) -> bool:
        cfg = self.cfg
        some = cfg.speed > 0 or cfg.gain_db > 0 or cfg.noise_snr_max > cfg.noise_snr_min
        return cfg.enabled and cfg.prob > 0 and some

    def draw(self, rng: np.random.Generator) -> dict[str, float]:
        """The transforms to apply and their values ({"speed": f, "gain_db": g, "snr_db": s},
        those that won their coin flip only). Disabled transforms draw nothing from rng."""
        cfg, out = self.cfg, {}
        if not cfg.enabled:
            return out
        if cfg.speed > 0 and rng.random() < cfg.prob:
            out["speed"] = float(rng.uniform(1 - cfg.speed, 1 + cfg.speed))
        if cfg.gain_db > 0 and rng.random() < cfg.prob:
            out["gain_db"] = float(rng.uniform(-cfg.gain_db, cfg.gain_db))
        if cfg.noise_snr_max > cfg.noise_snr_min and rng.random() < cfg.prob:
            out["snr_db"] = float(rng.uniform(cfg.noise_snr_min, cfg.noise_snr_max))
        return out

    def __call__(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(n,) float32 -> (m,) float32 in [-1, 1]; m ~ n / speed factor."""
        x = np.asarray(samples, dtype=np.float32)
        todo = self.draw(rng)
        if "speed" in todo:
            x = self._speed(x, todo["speed"])
        if "gain_db" in todo:
            x = x * np.float32(10 ** (todo["gain_db"] / 20))
        if "snr_db" in todo:
            x = _add_noise(x, todo["snr_db"], rng)
        return np.clip(x, -1.0, 1.0).astype(np.float32, copy=False)

    def _speed(self, x: np.ndarray, factor: float) -> np.ndarray:
        # Kaldi-style: pretend the clip was recorded at rate*factor and resample it back to rate,
        # so it plays `factor` times faster, n/factor samples long, pitch shifted by `factor`.
        _, soxr = backends()
        return soxr.resample(x, self.rate * factor, self.rate, quality="HQ").astype(np.float32, copy=False)


def _add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    # SNR relative to the clip's own RMS, so quiet and loud recordings get the same relative noise.
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    std = np.float32(rms / 10 ** (snr_db / 20))
    return x + std * rng.standard_normal(x.shape, dtype=np.float32)


def spec_augment(model_config, enabled: bool) -> dict:
    """Switch the model's own SpecAugment on or off by editing its Hugging Face config in place;
    returns what was set, for the run summary.

    Call it before the model is built from the config: wav2vec2-style models create the learned
    time-mask embedding only when mask_time_prob or mask_feature_prob is > 0 at construction.
    Disabling clears only apply_spec_augment (both model families check it first) and keeps the
    probabilities, so a saved fine-tuned config still carries the pretrained values."""
    if not hasattr(model_config, "apply_spec_augment") or not hasattr(model_config, "mask_time_prob"):
        kind = getattr(model_config, "model_type", type(model_config).__name__)
        return {"applied": False, "reason": f"{kind} models have no SpecAugment settings"}
    model_config.apply_spec_augment = bool(enabled)
    if enabled:
        for key, default in SPEC_AUGMENT_DEFAULTS.items():
            if hasattr(model_config, key) and not (getattr(model_config, key) or 0) > 0:
                setattr(model_config, key, default)  # keep any value the checkpoint already sets
        _fit_feature_span(model_config)
        settings = {key: getattr(model_config, key) for key in REPORTED if hasattr(model_config, key)}
    else:
        settings = {"apply_spec_augment": False}
    return {"applied": bool(enabled), "settings": settings}


def _fit_feature_span(model_config) -> None:
    """A feature mask must be shorter than the feature axis (Whisper: mel bins, wav2vec2: hidden
    size); small models (e.g. 8 mel bins) get spans of a quarter of it."""
    width = getattr(model_config, "num_mel_bins", None) or getattr(model_config, "hidden_size", None)
    length = getattr(model_config, "mask_feature_length", None)
    if width and length and length >= width // 2:
        model_config.mask_feature_length = max(1, width // 4)
