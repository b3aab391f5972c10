"""Training-time speech augmentation: waveform transforms measured on a tone, and SpecAugment
switched on inside tiny random Whisper / wav2vec2 configs."""
import numpy as np
import pytest

from ftkit.config import AudioAugmentConfig
from ftkit.data.audio_augment import AudioAugment, spec_augment

pytest.importorskip("soxr", reason="make install adds the [audio] extra")

RATE = 16000
SEEDS = range(6)


def tone(seconds: float = 1.0, hz: float = 440.0, amp: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def only(**kw) -> AudioAugment:
    """An augmenter that always applies just the transforms named in kw (all others off)."""
    off = {"prob": 1.0, "gain_db": 0.0, "speed": 0.0, "noise_snr_min": 0.0, "noise_snr_max": 0.0}
    return AudioAugment(AudioAugmentConfig(**{**off, **kw}), RATE)


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[spectrum.argmax()])


def db(a: np.ndarray, b: np.ndarray) -> float:
    """Power ratio of a to b, in dB."""
    return float(10 * np.log10(np.mean(np.square(a, dtype=np.float64)) / np.mean(np.square(b, dtype=np.float64))))


@pytest.mark.parametrize("seed", SEEDS)
def test_speed_shortens_by_the_factor_and_shifts_pitch(seed):
    aug, x = only(speed=0.2), tone()
    factor = aug.draw(np.random.default_rng(seed))["speed"]
    out = aug(x, np.random.default_rng(seed))
    assert 0.8 <= factor <= 1.2 and factor != 1.0
    assert abs(len(out) - len(x) / factor) <= 2
    assert peak_hz(out) == pytest.approx(440 * factor, abs=2)  # played faster: higher pitch (Kaldi)


@pytest.mark.parametrize("seed", SEEDS)
def test_gain_changes_rms_by_the_drawn_db(seed):
    aug, x = only(gain_db=6.0), tone()
    gain = aug.draw(np.random.default_rng(seed))["gain_db"]
    out = aug(x, np.random.default_rng(seed))
    assert -6.0 <= gain <= 6.0
    assert db(out, x) == pytest.approx(gain, abs=1e-3)
    assert len(out) == len(x)


@pytest.mark.parametrize("seed", SEEDS)
def test_noise_is_added_at_the_drawn_snr(seed):
    aug, x = only(noise_snr_min=10.0, noise_snr_max=30.0), tone()
    snr = aug.draw(np.random.default_rng(seed))["snr_db"]
    out = aug(x, np.random.default_rng(seed))
    assert 10.0 <= snr <= 30.0
    assert db(x, out - x) == pytest.approx(snr, abs=0.3)  # 16k noise samples: power within ~1%


def test_transforms_run_in_order_speed_gain_noise():
    aug = only(speed=0.1, gain_db=6.0, noise_snr_min=20.0, noise_snr_max=30.0)
    assert list(aug.draw(np.random.default_rng(0))) == ["speed", "gain_db", "snr_db"]


@pytest.mark.parametrize("cfg", [
    AudioAugmentConfig(prob=0.0),
    AudioAugmentConfig(enabled=False, prob=1.0),
    AudioAugmentConfig(prob=1.0, gain_db=0, speed=0, noise_snr_min=30, noise_snr_max=30),
])
def test_nothing_enabled_leaves_the_clip_unchanged(cfg):
    aug, x = AudioAugment(cfg, RATE), tone()
    out = aug(x, np.random.default_rng(0))
    assert not aug.active and aug.draw(np.random.default_rng(0)) == {}
    assert out.dtype == np.float32 and np.array_equal(out, x)


def test_default_config_is_active_and_sometimes_skips_a_transform():
    aug = AudioAugment(AudioAugmentConfig(), RATE)
    drawn = [len(aug.draw(np.random.default_rng(s))) for s in range(50)]
    assert aug.active and min(drawn) < 3 and max(drawn) > 0  # prob 0.5 per transform


def test_same_seed_same_clip_other_seed_other_clip():
    aug, x = AudioAugment(AudioAugmentConfig(prob=1.0), RATE), tone()
    first, again = aug(x, np.random.default_rng(7)), aug(x, np.random.default_rng(7))
    other = aug(x, np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert len(first) != len(other) or not np.array_equal(first, other)


def test_loud_clip_is_clipped_to_unit_range_and_stays_float32():
    aug = only(gain_db=20.0, noise_snr_min=0.0, noise_snr_max=5.0)
    for seed in SEEDS:
        out = aug(tone(amp=0.99).astype(np.float64), np.random.default_rng(seed))
        assert out.dtype == np.float32 and np.abs(out).max() <= 1.0


# --- SpecAugment inside the model ------------------------------------------------------------

def tiny_whisper_config(**kw):
    from transformers import WhisperConfig

    return WhisperConfig(vocab_size=64, num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
                         encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                         decoder_ffn_dim=32, max_source_positions=30, max_target_positions=16,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
                         dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, **kw)


def test_whisper_enabled_fills_the_zero_settings_and_keeps_set_ones():
    config = tiny_whisper_config(mask_time_prob=0.2)
    assert config.apply_spec_augment is False and config.mask_feature_prob == 0
    result = spec_augment(config, True)
    assert result["applied"] and config.apply_spec_augment is True
    assert config.mask_time_prob == 0.2  # the checkpoint's own value wins
    assert config.mask_feature_prob == 0.05 and config.mask_feature_length == 10
    assert result["settings"]["mask_feature_prob"] == 0.05 and result["settings"]["mask_time_min_masks"] == 2


def test_disabled_clears_the_flag_for_whisper_and_wav2vec2():
    from transformers import Wav2Vec2Config

    for config in (tiny_whisper_config(apply_spec_augment=True), Wav2Vec2Config(mask_time_prob=0.3)):
        result = spec_augment(config, False)
        assert result == {"applied": False, "settings": {"apply_spec_augment": False}}
        assert config.apply_spec_augment is False


def test_wav2vec2_enabled_adds_feature_masking():
    from transformers import Wav2Vec2Config

    config = Wav2Vec2Config(apply_spec_augment=False, mask_time_prob=0.3)
    result = spec_augment(config, True)
    assert result["applied"] and config.apply_spec_augment is True
    assert (config.mask_time_prob, config.mask_feature_prob) == (0.3, 0.05)


def test_a_model_without_spec_augment_is_reported_not_changed():
    from transformers import BertConfig

    config = BertConfig()
    result = spec_augment(config, True)
    assert result["applied"] is False and "bert" in result["reason"]
    assert not hasattr(config, "apply_spec_augment")


def encoder_out(model, features, train: bool):
    import torch

    model.train(train)
    with torch.no_grad():
        out = model(input_features=features.clone(), decoder_input_ids=torch.tensor([[1, 3]]))
    return out.encoder_last_hidden_state  # (1, 30, 16)


@pytest.mark.parametrize("enabled", [True, False])
def test_whisper_masks_in_train_mode_only_when_enabled(enabled):
    import torch
    from transformers import WhisperForConditionalGeneration

    config = tiny_whisper_config()
    spec_augment(config, enabled)
    torch.manual_seed(0)
    np.random.seed(0)  # transformers draws the mask spans from numpy's global generator
    model = WhisperForConditionalGeneration(config)
    features = torch.randn(1, 80, 60)  # (batch, mel bins, frames = 2 * max_source_positions)
    train, evaluation = encoder_out(model, features, True), encoder_out(model, features, False)
    # dropout is 0, so train and eval differ only if SpecAugment masked the features
    assert torch.allclose(train, evaluation) is not enabled
