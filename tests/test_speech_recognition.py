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

from conftest import build_tiny_ctc, run_cli, spoken, write_csv, write_speech_table

pytest.importorskip("soundfile", reason="make install adds the [audio] extra")
pytest.importorskip("jiwer", reason="make install adds the [audio] extra")

FAST = {"epochs": 2, "batch_size": 4, "lr": 1e-3, "quiet": True}


def speech_fit(model, data, out, strategy="full", overrides=None, **options):
    import ftkit

    return ftkit.fit(task="speech-recognition", model=str(model), train=str(data["train"]), test=str(data["test"]),
                     strategy=strategy, out=str(out), overrides={"eval.bootstrap": 50, **(overrides or {})},
                     **{**FAST, **options})


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
    for _ in range(15):
        loss = loss_fn(p.model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0], losses


def test_ctc_folder_without_a_tokenizer_gets_the_training_alphabet(speech, tmp_path):
    p = prepared(build_tiny_ctc(tmp_path / "bare", with_tokenizer=False), speech)
    vocab = p.processor.tokenizer.get_vocab()
    assert set("abcdefgh") <= set(vocab) and "|" in vocab  # letters of the transcripts; space = '|'
    assert p.model.config.vocab_size == len(p.processor.tokenizer)
    assert not p.model.ftkit_pretrained_head  # a new output layer: no zero-shot score to report


def test_fit_writes_wer_before_and_after_and_predicts(tiny_whisper, speech, tmp_path):
    out = tmp_path / "run"
    run = speech_fit(tiny_whisper, speech, out)
    s = run.summary
    test, before = s["metrics"]["test"], s["metrics"]["test_before"]
    for metrics in (test, before):
        assert {"wer", "cer", "loss", "ci"} <= set(metrics) and metrics["n"] == 10
        assert metrics["ci"]["wer"][0] <= metrics["wer"] <= metrics["ci"]["wer"][1]
    z = s["zero_shot"]
    assert z["before"] == before["wer"] and z["after"] == test["wer"] and "zero-shot wer" in z["verdict"]
    lo, hi = z["change_ci_points"]  # paired bootstrap of the change, in points
    assert lo <= z["change_points"] <= hi
    frame = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert list(frame.columns) == ["row", "audio", "reference", "transcript", "wer", "zero_shot"]
    assert len(frame) == 10 and frame["reference"].iloc[0] == pd.read_csv(speech["test"])["text"].iloc[0]
    assert (out / "model" / "model.safetensors").is_file() and (out / "report.html").is_file()
    assert "automatic-speech-recognition" in (out / "model" / "README.md").read_text()

    clip = speech["test"].parent / "clips" / "0.wav"
    said = run_cli("predict", out, "--audio", clip, "--quiet")  # the CLI path: --audio, JSON lines
    assert said.returncode == 0, said.stderr
    line = json.loads(said.stdout)
    assert line["audio"] == str(clip) and line["transcript"] == frame["transcript"].iloc[0]
    metrics, hypotheses = run.predictor.evaluate(run.predictor.read(str(speech["test"])))  # `ftkit eval`
    assert metrics["wer"] == pytest.approx(test["wer"]) and np.isfinite(metrics["loss"])
    assert hypotheses == list(frame["transcript"])


def test_frozen_encoder_caches_the_encoder_and_trains_the_decoder(tiny_whisper, speech, tmp_path):
    """The encoder's weights come out unchanged and the decoder's move; LoRA runs save an adapter
    that predict reloads, and the merged export transcribes the same."""
    import torch
    from safetensors.torch import load_file

    import ftkit

    run = speech_fit(tiny_whisper, speech, tmp_path / "frozen", "frozen-encoder")
    trained = load_file(str(run.model_dir / "model.safetensors"))
    original = load_file(str(tiny_whisper / "model.safetensors"))
    encoder = [k for k in original if k.startswith("model.encoder.")]
    decoder = [k for k in original if k.startswith("model.decoder.layers.")]
    assert all(torch.equal(trained[k], original[k]) for k in encoder)
    assert any(not torch.equal(trained[k], original[k]) for k in decoder)
    assert run.summary["params"]["trainable"] < run.summary["params"]["total"]

    lora = speech_fit(tiny_whisper, speech, tmp_path / "lora", "lora")
    assert (lora.model_dir / "adapter_model.safetensors").is_file()
    lora.predictor.export(tmp_path / "exported")
    clip = str(speech["test"].parent / "clips" / "1.wav")
    assert lora.predict([clip])[0]["transcript"] == ftkit.load(tmp_path / "exported").predict([clip])[0]["transcript"]


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


def test_frozen_encoder_refuses_ctc(speech, tmp_path):
    from ftkit.errors import FtkitError

    with pytest.raises(FtkitError, match="encoder-decoder"):
        prepared(build_tiny_ctc(tmp_path / "ctc"), speech, "frozen-encoder")


def test_whisper_linear_probe_trains_an_untied_output_layer(tiny_whisper, speech, tmp_path):
    """Whisper's readout is its output layer, tied to the token embeddings: the probe trains a
    copy of it on cached encoder outputs; everything else, the embeddings included, stays as
    pretrained, and the saved run reloads with the trained copy."""
    import torch
    from safetensors.torch import load_file

    import ftkit

    from ftkit.strategies import default_lr
    from ftkit.tasks import get_task

    assert default_lr("linear-probe", get_task("speech-recognition")) == 1e-4  # a pretrained readout
    p = prepared(tiny_whisper, speech, "linear-probe")
    assert type(p.data["train"]).__name__ == "CachedSpeech"
    assert [n for n, q in p.model.named_parameters() if q.requires_grad] == ["proj_out.weight"]
    assert p.model.proj_out.weight is not p.model.get_input_embeddings().weight
    before = load_file(str(tiny_whisper / "model.safetensors"))
    out = tmp_path / "probe"
    run = speech_fit(tiny_whisper, speech, out, strategy="linear-probe", epochs=1, lr=1e-2)
    after = load_file(str(out / "model" / "model.safetensors"))
    moved = {k for k in before if k in after and not torch.equal(before[k], after[k])}
    assert moved == set() and not torch.equal(after["proj_out.weight"], after["model.decoder.embed_tokens.weight"])
    clip = str(speech["test"].parent / "clips" / "0.wav")
    assert ftkit.load(out).predict([clip])[0]["transcript"] == run.predictor.predict([clip])[0]["transcript"]


@pytest.mark.precision
def test_kill_then_resume_matches_uninterrupted(tiny_whisper, speech, tmp_path):
    """Augmented training (speed, gain, noise, SpecAugment drawing from numpy's global generator)
    resumes to the same metrics, bitwise, in fp32 and in bf16 (the run seeds numpy's global
    generator: unseeded, a new process drew other SpecAugment masks and bf16 runs differed by 4e-6)."""
    import ftkit

    sets = {"train.checkpoint_every": 2, "train.eval_every": 100, "eval.bootstrap": 0}
    straight = speech_fit(tiny_whisper, speech, tmp_path / "straight", epochs=4, overrides=sets)
    killed = tmp_path / "killed"
    flags = ["fit", "--task", "speech-recognition", "--model", str(tiny_whisper), "--train", str(speech["train"]),
             "--test", str(speech["test"]), "--epochs", "4", "--batch-size", "4", "--lr", "1e-3", "--out", str(killed),
             "--quiet", *[x for k, v in sets.items() for x in ("--set", f"{k}={v}")]]
    proc = subprocess.Popen([sys.executable, "-m", "ftkit.cli", *flags], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    pointer = killed / "checkpoints" / "latest.json"
    deadline = time.time() + 120
    while not pointer.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run finished before it could be killed"
    resumed = ftkit.fit(out=str(killed), resume=True, quiet=True)
    assert resumed.summary["resumed"] is True
    assert resumed.metrics["test"]["wer"] == straight.metrics["test"]["wer"]
    assert resumed.metrics["test"]["loss"] == straight.metrics["test"]["loss"]


def test_bad_clips_are_refused_naming_file_and_line(tiny_whisper, tmp_path):
    import soundfile

    import ftkit
    from ftkit.errors import DataError

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
        with pytest.raises(DataError) as err:
            ftkit.fit(task="speech-recognition", model=str(tiny_whisper), train=str(train), out=str(tmp_path / name),
                      quiet=True)
        assert file in str(err.value) and message in str(err.value) and str(train) in str(err.value), name
        assert not (tmp_path / name).exists()  # a refused run writes nothing
    result = run_cli("fit", "--task", "speech-recognition", "--model", tiny_whisper, "--train",
                     folder / "corrupt.csv", "--out", tmp_path / "cli", "--quiet")
    assert result.returncode == 2 and "2.wav" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["full", "lora", "frozen-encoder", "freeze-bottom", "llrd", "bitfit",
                                  "gradual-unfreeze", "linear-probe", "lp-ft"])
def test_every_whisper_strategy_prepares_and_steps(tiny_whisper, speech, name):
    """Each strategy that applies to Whisper sets up through fit's own prepare and takes a step:
    gradients reach only what the strategy leaves trainable."""
    p = prepared(tiny_whisper, speech, name, **{"data.audio_augment.enabled": "false"})
    assert 0 < p.params.trainable <= p.params.total
    loss = p.task.make_loss(p.cfg, p.data["train"])(p.model, p.data["train"].batch(np.arange(4)))
    loss.backward()
    touched = [q for q in p.model.parameters() if q.grad is not None]
    assert touched and all(q.requires_grad for q in touched)


def test_whisper_layer_groups_cover_every_parameter_once(tiny_whisper):
    from transformers import WhisperForConditionalGeneration

    from ftkit.strategies.groups import layer_groups

    model = WhisperForConditionalGeneration.from_pretrained(tiny_whisper)
    groups = layer_groups(model)
    names = [n for group in groups.ordered() for n, _ in group]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())  # tied proj_out appears once
    assert len(groups.blocks) == 4  # 2 encoder + 2 decoder blocks, bottom to top
    assert all(n.startswith("model.encoder.") for n, _ in groups.embeddings)
    assert all(n.startswith("model.decoder.layer_norm") for n, _ in groups.head)


@pytest.mark.parametrize("name", ["linear-probe", pytest.param("lp-ft", marks=pytest.mark.slow)])
def test_ctc_probe_strategies_train_the_output_layer(speech, tmp_path, name):
    """A CTC model's output layer scores every frame (no one vector per clip to cache): the probe
    trains it behind the frozen body, and only it moves (lp-ft: everything, after the probe)."""
    import torch
    from safetensors.torch import load_file

    folder = build_tiny_ctc(tmp_path / "ctc")
    before = {k: v.clone() for k, v in load_file(next(folder.glob("*.safetensors"))).items()}
    out = tmp_path / name
    speech_fit(folder, speech, out, strategy=name, epochs=1,
               overrides={"strategy.probe_epochs": 1} if name == "lp-ft" else None)
    after = load_file(next((out / "model").glob("*.safetensors")))
    moved = {k for k in before if k in after and not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("lm_head.") for k in moved) == (name == "linear-probe"), sorted(moved)
    assert "wer" in json.loads((out / "summary.json").read_text())["metrics"]["test"]


def test_advise_profiles_speech_strategies_and_recommends_the_frozen_encoder(tiny_whisper, speech, tmp_path):
    out = tmp_path / "advice.json"
    result = run_cli("advise", "--task", "speech-recognition", "--model", tiny_whisper, "--train", speech["train"],
                     "--test", speech["test"], "--strategies", "frozen-encoder,linear-probe", "--out", out,
                     "--quiet")
    assert result.returncode == 0, result.stderr
    advice = json.loads(out.read_text())
    for name in ("frozen-encoder", "linear-probe"):
        assert advice["strategies"][name]["total_seconds"] > 0, advice["strategies"][name]
    rec = advice["recommendation"]
    assert rec["strategy"] == "frozen-encoder" and "fewer than 2000" in rec["reasons"][0]
    assert rec["command"].startswith("ftkit fit --task speech-recognition") and "frozen-encoder" in rec["command"]
