import json

import pandas as pd

from conftest import run_cli


def test_compare_runs_each_strategy_with_the_same_budget(tmp_path, tiny_model, sentiment):
    out = tmp_path / "cmp"
    result = run_cli("compare", "--strategies", "full,bitfit", "--model", tiny_model, "--train", sentiment["train"],
                     "--test", sentiment["test"], "--epochs", "2", "--batch-size", "8", "--lr", "3e-3",
                     "--out", out, "--quiet", "--set", "train.threads=1")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "comparison.csv")
    assert table["strategy"].tolist() == ["full", "bitfit"]
    assert (table["trainable_params"] < table["total_params"]).tolist() == [False, True]
    assert (out / "comparison.png").stat().st_size > 1000
    for name in ("full", "bitfit"):
        s = json.loads((out / name / "summary.json").read_text())
        assert s["strategy"] == name and s["seed"] == 0 and s["timing"]["steps"] == 2 * 27
    assert "bitfit" in result.stdout and "comparison.csv" in result.stdout
    again = run_cli("compare", "--strategies", "full,nope", "--model", tiny_model, "--train", sentiment["train"],
                    "--out", tmp_path / "cmp2", "--quiet")
    assert again.returncode == 2 and "unknown strategy 'nope'" in again.stderr
