import json
from pathlib import Path

import pandas as pd

from conftest import run_cli


def test_compare_runs_each_strategy_with_the_same_budget(tmp_path, tiny_model, sentiment):
    out = tmp_path / "cmp"
    result = run_cli("compare", "--strategies", "full,bitfit[train.l2sp=0.5]", "--model", tiny_model, "--train", sentiment["train"],
                     "--test", sentiment["test"], "--epochs", "2", "--batch-size", "8", "--lr", "3e-3",
                     "--out", out, "--quiet", "--set", "train.threads=1")
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out / "comparison.csv")
    assert table["strategy"].tolist() == ["full", "bitfit+l2sp=0.5"]  # a variant with its own settings
    assert (table["trainable_params"] < table["total_params"]).tolist() == [False, True]
    assert (out / "comparison.png").stat().st_size > 1000
    for name, folder, l2sp in (("full", "full", 0.0), ("bitfit", "bitfit+l2sp=0.5", 0.5)):
        s = json.loads((out / folder / "summary.json").read_text())
        assert s["strategy"] == name and s["seed"] == 0 and s["timing"]["steps"] == 2 * 27
        assert s["hyperparameters"]["l2sp"] == l2sp
    assert "bitfit" in result.stdout and "comparison.csv" in result.stdout
    again = run_cli("compare", "--strategies", "full,nope", "--model", tiny_model, "--train", sentiment["train"],
                    "--out", tmp_path / "cmp2", "--quiet")
    assert again.returncode == 2 and "unknown strategy 'nope'" in again.stderr


def test_variants_split_and_parse():
    from ftkit.config import validate
    from ftkit.runs.compare import parse_variant, split_variants, variant_config

    items = split_variants("full, lora,full[train.l2sp=0.01; retention.rehearsal=0.2],freeze-bottom[strategy.layers=2]")
    assert items == ["full", "lora", "full[train.l2sp=0.01; retention.rehearsal=0.2]", "freeze-bottom[strategy.layers=2]"]
    label, name, sets = parse_variant(items[2])
    assert (label, name) == ("full+l2sp=0.01+rehearsal=0.2", "full")
    cfg = variant_config(validate({"train": {"lr": 1e-4}}), name, sets, Path("out") / label)
    assert (cfg.train.l2sp, cfg.retention.rehearsal, cfg.train.lr, cfg.strategy.name) == (0.01, 0.2, 1e-4, "full")
    assert variant_config(validate({}), *parse_variant(items[3])[1:], Path("o")).strategy.model_extra == {"layers": 2}
