"""Speech recognition on tiny random Whisper and wav2vec2-CTC models: training steps learn, the run
folder holds WER/CER before and after, strategies (frozen-encoder cache, LoRA), predict/export,
resume after a kill, and clear errors for bad clips."""
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from conftest import build_tiny_ctc, run_cli, spoken, summary, write_csv, write_speech_table

pytest.importorskip("soundfile", reason="make install adds the [audio] extra")
pytest.importorskip("jiwer", reason="make install adds the [audio] extra")


def speech_flags(model, data, out, *extra):
    return ["fit", "--task", "speech-recognition", "--model", str(model), "--train", str(data["train"]),
            "--test", str(data["test"]), "--epochs", "2", "--batch-size", "4", "--lr", "1e-3",
            "--set", "eval.bootstrap=50", "--out", str(out), "--quiet", *extra]


def prepared(model_dir, data, strategy="full", **overrides):
    from ftkit.config import build_config
    from ftkit.runs.fit import prepare

    sets = [f"{k}={v}" for k, v in overrides.items()]
    cfg = build_config(None, {"task": "speech-recognition", "model.name": str(model_dir),
                              "data.train": str(data["train"]), "data.test": str(data["test"]),
                              "strategy.name": strategy, "train.lr": 1e-3}, sets)
    return prepare(cfg)


@pytest.mark.parametrize("family", ["whisper", "ctc"])
def test_training_steps_lower_the_loss(tiny_whisper, speech, tmp_path, family):
    """A few optimizer steps on one batch of clips: the task's loss (seq2seq cross-entropy, CTC)
    goes down on both model families."""
    import torch

    folder = tiny_whisper if family == "whisper" else build_tiny_ctc(tmp_path / "ctc")
    p = prepared(folder, speech, **{"data.audio_augment.enabled": "false"})
    loss_fn = p.task.make_loss(p.cfg, p.data["train"])
    batch = p.data["train"].batch(np.arange(8))
    optimizer = torch.optim.AdamW([q for q in p.model.parameters() if q.requires_grad], lr=3e-3)
    p.model.train()
    losses = []
    for _ in range(25):
        loss = loss_fn(p.model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert np.isfinite(losses).all() and losses[-1] < 0.7 * losses[0], losses


def test_ctc_folder_without_a_tokenizer_gets_the_training_alphabet(speech, tmp_path):
    p = prepared(build_tiny_ctc(tmp_path / "bare", with_tokenizer=False), speech)
    vocab = p.processor.tokenizer.get_vocab()
    assert set("abcdefgh") <= set(vocab) and "|" in vocab  # letters of the transcripts; space = '|'
    assert p.model.config.vocab_size == len(p.processor.tokenizer)
    assert not p.model.ftkit_pretrained_head  # a new output layer: no zero-shot score to report


def test_fit_writes_wer_before_and_after_and_predicts(tiny_whisper, speech, tmp_path):
    out = tmp_path / "run"
    result = run_cli(*speech_flags(tiny_whisper, speech, out))
    assert result.returncode == 0, result.stderr
    s = summary(out)
    test, before = s["metrics"]["test"], s["metrics"]["test_before"]
    for metrics in (test, before):
        assert {"wer", "cer", "loss", "ci"} <= set(metrics) and metrics["n"] == 10
        assert metrics["ci"]["wer"][0] <= metrics["wer"] <= metrics["ci"]["wer"][1]
    assert s["zero_shot"]["before"] == before["wer"] and "zero-shot wer" in s["zero_shot"]["verdict"]
    assert "zero-shot wer" in result.stdout
    frame = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert list(frame.columns) == ["row", "audio", "reference", "transcript", "wer", "zero_shot"]
    assert len(frame) == 10 and frame["reference"].iloc[0] == pd.read_csv(speech["test"])["text"].iloc[0]
    assert (out / "model" / "model.safetensors").is_file() and (out / "report.html").is_file()

    clip = speech["test"].parent / "clips" / "0.wav"
    said = run_cli("predict", out, "--audio", clip, "--quiet")
    assert said.returncode == 0, said.stderr
    assert json.loads(said.stdout)["audio"] == str(clip) and "transcript" in json.loads(said.stdout)
    scored = run_cli("eval", out, "--data", speech["test"], "--quiet")
    assert scored.returncode == 0 and "wer" in scored.stdout, scored.stderr
    saved = json.loads((out / "evaluations" / "data.json").read_text())["metrics"]
    assert saved["wer"] == pytest.approx(test["wer"]) and np.isfinite(saved["loss"])


def test_frozen_encoder_caches_the_encoder_and_trains_the_decoder(tiny_whisper, speech, tmp_path):
    """The encoder's outputs are computed once per split (a second run reuses the cache) and the
    encoder's weights come out unchanged; LoRA runs save an adapter that predict reloads."""
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "frozen"
    assert run_cli(*speech_flags(tiny_whisper, speech, out, "--strategy", "frozen-encoder")).returncode == 0
    trained = load_file(str(out / "model" / "model.safetensors"))
    original = load_file(str(tiny_whisper / "model.safetensors"))
    encoder = [k for k in original if k.startswith("model.encoder.")]
    decoder = [k for k in original if k.startswith("model.decoder.layers.")]
    assert all(torch.equal(trained[k], original[k]) for k in encoder)
    assert any(not torch.equal(trained[k], original[k]) for k in decoder)
    s = summary(out)
    assert s["params"]["trainable"] < s["params"]["total"]

    lora = tmp_path / "lora"
    assert run_cli(*speech_flags(tiny_whisper, speech, lora, "--strategy", "lora")).returncode == 0
    assert (lora / "model" / "adapter_model.safetensors").is_file()
    exported = tmp_path / "exported"
    assert run_cli("export", lora, "--out", exported, "--quiet").returncode == 0
    clip = speech["test"].parent / "clips" / "1.wav"
    a = json.loads(run_cli("predict", lora, "--audio", clip, "--quiet").stdout)
    b = json.loads(run_cli("predict", exported, "--audio", clip, "--quiet").stdout)
    assert a["transcript"] == b["transcript"]  # the merged export transcribes as the adapter does


def test_encoder_cache_is_reused(tiny_whisper, speech, tmp_path, feature_cache):
    first = prepared(tiny_whisper, speech, "frozen-encoder")
    files = sorted(feature_cache.glob("features/encoder-*.npy"))
    assert files and type(first.data["train"]).__name__ == "CachedSpeech"
    tick = {f: f.stat().st_mtime_ns for f in files}
    second = prepared(tiny_whisper, speech, "frozen-encoder")
    assert {f: f.stat().st_mtime_ns for f in files} == tick  # read back, not written again
    batch = np.arange(4)
    assert np.array_equal(first.data["train"].batch(batch)["encoder_hidden"].numpy(),
                          second.data["train"].batch(batch)["encoder_hidden"].numpy())
    # the training rows scored at each validation read the same file, in their own order
    part = first.data["train"].subset([3, 1])
    assert np.array_equal(part.batch(np.array([0, 1]))["encoder_hidden"].numpy(),
                          first.data["train"].batch(np.array([3, 1]))["encoder_hidden"].numpy())
    assert part.transcripts == [first.data["train"].transcripts[i] for i in (3, 1)]


def test_probe_strategies_refuse_whisper_and_frozen_encoder_refuses_ctc(tiny_whisper, speech, tmp_path):
    from ftkit.errors import FtkitError

    with pytest.raises(FtkitError, match="no new head to probe"):
        prepared(tiny_whisper, speech, "linear-probe")
    with pytest.raises(FtkitError, match="encoder-decoder"):
        prepared(build_tiny_ctc(tmp_path / "ctc"), speech, "frozen-encoder")


def test_kill_then_resume_matches_uninterrupted(tiny_whisper, speech, tmp_path):
    """Augmented training (speed, gain, noise, SpecAugment) resumes to the same metrics."""
    flags = ["--set", "train.checkpoint_every=2", "--set", "train.eval_every=100", "--epochs", "6"]
    straight = tmp_path / "straight"
    assert run_cli(*speech_flags(tiny_whisper, speech, straight, *flags)).returncode == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "ftkit.cli", *speech_flags(tiny_whisper, speech, killed, *flags)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = killed / "checkpoints" / "latest.json"
    deadline = time.time() + 120
    while not pointer.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run finished before it could be killed"
    assert run_cli("fit", "--out", killed, "--resume", "--quiet").returncode == 0
    assert summary(killed)["resumed"] is True
    assert summary(killed)["metrics"]["test"]["wer"] == summary(straight)["metrics"]["test"]["wer"]
    assert summary(killed)["metrics"]["test"]["loss"] == pytest.approx(summary(straight)["metrics"]["test"]["loss"])


def test_bad_clips_are_refused_naming_file_and_line(tiny_whisper, speech, tmp_path):
    import soundfile

    folder = tmp_path / "bad"
    write_speech_table(folder, ["abc", "bad", "cab", "dab"])
    (folder / "clips" / "2.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    soundfile.write(folder / "clips" / "long.wav", np.tile(spoken("abcd"), 6), 8000)  # 3.9 s > the 2 s window
    rows = pd.read_csv(folder / "data.csv").to_dict("records")
    cases = {"corrupt": (rows, "2.wav", "not readable audio"),
             "long": (rows[:2] + [{"audio": "clips/long.wav", "text": "a b"}], "long.wav", "longer than the 2 s"),
             "missing": (rows[:2] + [{"audio": "clips/nope.wav", "text": "a"}], "nope.wav", "not found"),
             "empty transcript": (rows[:2] + [{"audio": "clips/0.wav", "text": " "}], "line 4", "empty transcript")}
    for name, (table, file, message) in cases.items():
        train = write_csv(folder / f"{name}.csv", table)
        result = run_cli("fit", "--task", "speech-recognition", "--model", tiny_whisper, "--train", train,
                         "--out", tmp_path / name, "--quiet")
        assert result.returncode == 2, (name, result.stderr)
        assert file in result.stderr and message in result.stderr and str(train) in result.stderr, result.stderr
        assert not (tmp_path / name).exists()  # a refused run writes nothing
