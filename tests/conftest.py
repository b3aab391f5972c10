"""Shared fixtures: a tiny random BERT with its own tokenizer, synthetic sentiment data, and a
helper that runs the real CLI (in-process, or in a subprocess)."""
from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

# huggingface_hub reads this once, at import: set before any test imports transformers.
os.environ.setdefault("HF_HUB_OFFLINE", "1")



def pytest_addoption(parser):
    parser.addoption("--precision", choices=["machine", "fp32", "bf16"], default="machine",
                     help="what train.precision=auto resolves to in every run of the suite (subprocesses "
                          "included, through $FTKIT_PRECISION); 'machine': what this CPU/GPU picks")


def pytest_configure(config):
    choice = config.getoption("--precision")
    if choice != "machine":
        os.environ["FTKIT_PRECISION"] = choice


def pytest_report_header(config):
    from ftkit.training.device import pick_device, resolve_precision

    how = "forced by --precision" if config.getoption("--precision") != "machine" else "this machine's choice"
    return f"ftkit precision: auto -> {resolve_precision('auto', pick_device('auto'))} ({how})"


POSITIVE = ["good", "great", "fine", "love", "superb", "fun"]
NEGATIVE = ["bad", "awful", "poor", "hate", "dull", "boring"]
FILLER = ["the", "movie", "film", "plot", "was", "is", "a", "this", "actor", "story", "very", "and"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_bert(folder: Path, hidden: int = 32, layers: int = 2) -> Path:
    """A randomly initialised BERT (a few thousand parameters) with a word-level vocab."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = SPECIAL + POSITIVE + NEGATIVE + FILLER + ["neutral", "ok"]
    try:  # transformers >= 5 takes the vocabulary itself
        tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})
    except TypeError:
        (folder / "vocab.txt").write_text("\n".join(words) + "\n")
        tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    assert tokenizer.unk_token_id not in tokenizer("good film")["input_ids"]
    tokenizer.save_pretrained(folder)
    config = BertConfig(vocab_size=len(SPECIAL) + len(POSITIVE) + len(NEGATIVE) + len(FILLER) + 2,
                        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=hidden * 2, max_position_embeddings=64)
    import torch
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    return folder


def sentence(rng: random.Random, label: str) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 9))]
    for _ in range(rng.randint(1, 2)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label == "pos" else NEGATIVE))
    return " ".join(words)


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def sentiment_rows(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    labels = ["pos", "neg"] * (n // 2)
    return [{"text": sentence(rng, y), "label": y} for y in labels]


@pytest.fixture(scope="session", autouse=True)
def feature_cache(tmp_path_factory) -> Path:
    """Tests never write the user's feature cache (~/.cache/ftkit)."""
    folder = tmp_path_factory.mktemp("feature-cache")
    os.environ["FTKIT_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def sentiment(tmp_path_factory) -> dict[str, Path]:
    """train.csv (240 rows) and test.csv (80 rows) of clearly separable synthetic reviews."""
    folder = tmp_path_factory.mktemp("sentiment")
    return {"train": write_csv(folder / "train.csv", sentiment_rows(240, 1)),
            "test": write_csv(folder / "test.csv", sentiment_rows(80, 2))}


def fast_flags(model: Path, data: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["fit", "--model", str(model), "--train", str(data["train"]), "--test", str(data["test"]),
            "--out", str(out), "--epochs", "4", "--batch-size", "8", "--lr", "3e-3", "--quiet",
            "--set", "train.threads=1", *extra]


def run_cli(*args: str, timeout: float = 300, isolated: bool = False) -> subprocess.CompletedProcess:
    """Run `ftkit ARGS` and return its exit code, stdout and stderr.

    In-process by default: a fresh interpreter pays ~6 s of torch/sklearn/transformers imports per
    call, which over the suite's ~50 CLI calls was minutes on 2 cores. `isolated=True` runs a real
    subprocess, for tests whose point is process state (Ray, kills, timeouts)."""
    argv = [str(a) for a in args]
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if isolated:
        return subprocess.run([sys.executable, "-m", "ftkit.cli", *argv], capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, **env})
    return _run_in_process(argv, env)


def _run_in_process(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    import contextlib
    import io
    import traceback

    from ftkit import cli

    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_env = sys.argv, dict(os.environ)
    os.environ.update(env)
    sys.argv = ["ftkit", *argv]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
            except Exception:  # what an uncaught error does to a real process: traceback, exit 1
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["ftkit", *argv], code, out.getvalue(), err.getvalue())


def save_fuzz_counts(counts: dict) -> None:
    """FTKIT_FUZZ_COUNTS=PATH: merge the fuzz tests' counts (inputs, outcomes per reader) into PATH."""
    target = os.environ.get("FTKIT_FUZZ_COUNTS")
    if target:
        path = Path(target)
        saved = json.loads(path.read_text()) if path.is_file() else {}
        saved.update({reader: dict(c) for reader, c in counts.items()})
        path.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")


def summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, tiny_model, sentiment) -> Path:
    """One finished tiny run shared by tests that only read it."""
    out = tmp_path_factory.mktemp("runs") / "finished"
    result = run_cli(*fast_flags(tiny_model, sentiment, out))
    assert result.returncode == 0, result.stderr
    return out


def ner_sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Synthetic tagged sentences: positive words are POS entities, pairs of negative words NEG."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words, tags = [], []
        for _ in range(rng.randint(3, 8)):
            r = rng.random()
            if r < 0.2:
                words.append(rng.choice(POSITIVE))
                tags.append("B-POS")
            elif r < 0.3:
                words += [rng.choice(NEGATIVE), rng.choice(NEGATIVE)]
                tags += ["B-NEG", "I-NEG"]
            else:
                words.append(rng.choice(FILLER))
                tags.append("O")
        out.append((words, tags))
    return out


def write_conll(path: Path, sentences, docstart: bool = True) -> Path:
    lines = ["-DOCSTART-\tO", ""] if docstart else []
    for words, tags in sentences:
        lines += [f"{w}\t{t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def ner(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ner")
    return {"train": write_conll(folder / "train.conll", ner_sentences(200, 1)),
            "test": write_conll(folder / "test.conll", ner_sentences(60, 2))}


def build_tiny_resnet(folder: Path) -> Path:
    """A randomly initialised Hugging Face ResNet (BatchNorm inside) with a preprocessor config."""
    from transformers import ResNetConfig, ResNetForImageClassification

    import torch
    torch.manual_seed(0)
    config = ResNetConfig(num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                          layer_type="basic", num_labels=5)
    ResNetForImageClassification(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(
        {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "size": {"shortest_edge": 32}}))
    return folder


def stripes(rng: random.Random, label: str, size: int = 20):
    """Horizontal or vertical stripes (flip-proof classes), noisy, grayscale/RGB/RGBA mixed."""
    import numpy as np
    from PIL import Image

    period = rng.randint(3, 6)
    line = (np.arange(size) // period) % 2 * 200 + 25
    image = np.tile(line[:, None] if label == "horizontal" else line[None, :], (1, size) if label == "horizontal" else (size, 1))
    image = np.clip(image + np.random.default_rng(rng.randint(0, 10**6)).normal(0, 20, (size, size)), 0, 255).astype("uint8")
    return Image.fromarray(image, mode="L").convert(rng.choice(["L", "RGB", "RGBA"]))


def write_image_folder(folder: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    for i in range(n):
        label = ["horizontal", "vertical"][i % 2]
        (folder / label).mkdir(parents=True, exist_ok=True)
        stripes(rng, label).save(folder / label / f"{i:03d}.{rng.choice(['png', 'bmp', 'webp'])}")
    return folder


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    return {"train": write_image_folder(folder / "train", 80, 1), "test": write_image_folder(folder / "test", 30, 2)}


@pytest.fixture(scope="session")
def tiny_resnet(tmp_path_factory) -> Path:
    return build_tiny_resnet(tmp_path_factory.mktemp("tiny-resnet"))


# ---------------------------------------------------------------- speech

LETTER_HZ = {c: 300 + 90 * i for i, c in enumerate("abcdefgh")}  # one tone per letter


def build_tiny_whisper(folder: Path, seconds: int = 2, init_std: float = 0.02) -> Path:
    """A randomly initialised Whisper (d_model 16, 2+2 layers, 8 mel bins, a `seconds`-long window)
    with a byte-level tokenizer of lowercase letters, saved as a Hugging Face folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperTokenizerFast)

    from ftkit.models.whisper_import import _generation_config

    folder.mkdir(parents=True, exist_ok=True)
    symbols = list("abcdefghijklmnopqrstuvwxyz") + ["Ġ", "'"]
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|translate|>",
                "<|notimestamps|>"]
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(symbols)}, merges=[]))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.add_special_tokens(specials)
    tokenizer = WhisperTokenizerFast(tokenizer_object=tok, unk_token="<|endoftext|>", bos_token="<|endoftext|>",
                                     eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    ids = {s: tokenizer.convert_tokens_to_ids(s) for s in specials}
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(WhisperConfig(
        vocab_size=len(symbols) + len(specials), num_mel_bins=8, d_model=16, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=50 * seconds, max_target_positions=40, pad_token_id=ids["<|endoftext|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|endoftext|>"],
        decoder_start_token_id=ids["<|startoftranscript|>"], suppress_tokens=[], begin_suppress_tokens=[],
        init_std=init_std))
    _generation_config(model, tokenizer, {"lang_ids": [ids["<|en|>"]]})
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=8, chunk_length=seconds).save_pretrained(folder)
    return folder


def build_tiny_ctc(folder: Path, with_tokenizer: bool = True) -> Path:
    """A randomly initialised wav2vec2 CTC model (16-d, 2 layers); with_tokenizer=False leaves out
    the vocabulary, as a pretrained-only body ships (ftkit builds one from the transcripts)."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {s: i for i, s in enumerate(["<pad>", "<unk>", "|"] + list("abcdefgh"))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    if with_tokenizer:
        Wav2Vec2CTCTokenizer(str(folder / "vocab.json")).save_pretrained(folder)
    else:
        (folder / "vocab.json").unlink()
    torch.manual_seed(0)
    config = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=32, conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8),
                            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, pad_token_id=0,
                            architectures=["Wav2Vec2ForCTC"], do_stable_layer_norm=True, feat_extract_norm="layer")
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True).save_pretrained(folder)
    return folder


def spoken(word: str, rate: int = 8000, seconds_per_letter: float = 0.15, seed: int = 0):
    """A "word" as audio: one tone per letter (a little noise), so transcripts are learnable."""
    import numpy as np

    t = np.arange(int(rate * seconds_per_letter)) / rate
    rng = np.random.default_rng(seed)
    parts = [0.4 * np.sin(2 * np.pi * LETTER_HZ[c] * t) for c in word]
    clip = np.concatenate(parts + [np.zeros(rate // 20)])
    return (clip + 0.01 * rng.standard_normal(len(clip))).astype(np.float32)


def write_speech_table(folder: Path, words: list[str], rate: int = 8000, seed: int = 0) -> Path:
    """folder/clips/*.wav + folder/data.csv (audio paths relative to the table, transcripts); each
    clip has its own noise, so repeated words are different recordings."""
    import soundfile

    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, word in enumerate(words):
        soundfile.write(folder / "clips" / f"{i}.wav", spoken(word, rate, seed=seed * 100_000 + i), rate)
        rows.append({"audio": f"clips/{i}.wav", "text": " ".join(word)})  # letters as words: "a b c"
    return write_csv(folder / "data.csv", rows)


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("whisper"))


@pytest.fixture(scope="session")
def speech(tmp_path_factory) -> dict[str, Path]:
    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 4))) for _ in range(40)]
    root = tmp_path_factory.mktemp("speech")
    return {"train": write_speech_table(root / "train", words[:30]),
            "test": write_speech_table(root / "test", words[30:], seed=1)}


# ---------------------------------------------------------------- headless chromium (report, studio)

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip("headless chromium + chromedriver not installed (`make test` installs Debian's chromium "
                    "and chromium-driver when run as root with apt-get)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium missing: `make test` installs [dev]")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        options.add_argument(arg)
    options.binary_location = str(CHROMIUM)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()
