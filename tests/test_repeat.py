"""Cross-validation and repeated seeds: outer loops over `fit` (stratified, disjoint folds that
cover the data; seeds on identical splits; mean ± std; a killed loop resumes)."""
import json
from collections import Counter

import pytest

from conftest import run_cli
from ftkit.data.splits import fold_split
from ftkit.errors import ConfigError


def test_folds_are_stratified_disjoint_and_cover_every_row():
    labels = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    held = [fold_split(labels, len(labels), 5, i, seed=3)[1] for i in range(5)]
    assert sorted(sum(held, [])) == list(range(100))  # disjoint, and together every row once
    for part in held:
        assert Counter(labels[i] for i in part) == {"a": 12, "b": 6, "c": 2}
    keep, fold0 = fold_split(labels, len(labels), 5, 0, seed=3)
    assert not set(keep) & set(fold0) and len(keep) + len(fold0) == 100
    assert fold_split(labels, 100, 5, 0, seed=3) == fold_split(labels, 100, 5, 0, seed=3)
    assert fold_split(labels, 100, 5, 0, seed=4) != fold_split(labels, 100, 5, 0, seed=3)


def test_small_classes_fall_back_to_plain_folds_and_bad_k_is_refused():
    labels = ["a"] * 20 + ["b"] * 2
    held = [fold_split(labels, 22, 4, i, seed=0)[1] for i in range(4)]
    assert sorted(sum(held, [])) == list(range(22))
    with pytest.raises(ConfigError, match="--folds 1"):
        fold_split(labels, 22, 1, 0, seed=0)
    with pytest.raises(ConfigError, match="cv_fold=4"):
        fold_split(labels, 22, 4, 4, seed=0)


def flags(model, data, *extra):
    return ["--model", model, "--train", data["train"], "--epochs", "1", "--batch-size", "16", "--lr", "3e-3",
            "--quiet", "--set", "train.threads=1", *extra]


def test_cv_runs_one_fit_per_fold_and_reports_mean_and_std(tmp_path, tiny_model, sentiment):
    out = tmp_path / "cv"
    result = run_cli("cv", "--folds", "3", "--out", out, *flags(tiny_model, sentiment))
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "cv.json").read_text())
    assert report["folds"] == 3 and [r["name"] for r in report["runs"]] == ["fold-0", "fold-1", "fold-2"]
    tested = []
    for fold in range(3):
        splits = json.loads((out / f"fold-{fold}" / "splits.json").read_text())
        assert splits["test_split"] == {"from": "train", "fold": fold, "folds": 3, "seed": 0}
        tested += splits["test"]["lines"]
        trained = set(splits["train"]["lines"]) | set(splits["validation"]["lines"])
        assert not trained & set(splits["test"]["lines"])
    n_rows = len(sentiment["train"].read_text().splitlines()) - 1
    assert len(tested) == len(set(tested)) == n_rows  # every training row is tested exactly once
    acc = report["test"]["accuracy"]
    assert acc["values"] == [r["test"]["accuracy"] for r in report["runs"]]
    assert acc["min"] <= acc["mean"] <= acc["max"] and acc["std"] >= 0
    assert "mean ± std" in result.stdout

    again = run_cli("cv", "--folds", "3", "--out", out, "--resume", *flags(tiny_model, sentiment))
    assert again.returncode == 0 and json.loads((out / "cv.json").read_text())["test"] == report["test"]
    refused = run_cli("cv", "--folds", "3", "--test", sentiment["test"], "--out", tmp_path / "x",
                      *flags(tiny_model, sentiment))
    assert refused.returncode == 2 and "no such option" in refused.stderr.lower()


@pytest.mark.precision
def test_seeds_repeat_the_fit_on_the_same_splits(tmp_path, tiny_model, sentiment):
    out = tmp_path / "seeds"
    result = run_cli("fit", "--seeds", "2", "--seed", "5", "--out", out, "--test", sentiment["test"],
                     *flags(tiny_model, sentiment))
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "seeds.json").read_text())
    assert report["seeds"] == [5, 6] and report["split_seed"] == 5
    s5, s6 = (json.loads((out / f"seed-{s}" / "splits.json").read_text()) for s in (5, 6))
    assert s5["validation"]["lines"] == s6["validation"]["lines"]  # only training randomness differs
    runs = [json.loads((out / f"seed-{s}" / "summary.json").read_text()) for s in (5, 6)]
    assert [r["seed"] for r in runs] == [5, 6]
    assert report["test"]["accuracy"]["values"] == [r["metrics"]["test"]["accuracy"] for r in runs]


def test_duplicate_inputs_never_straddle_a_split_ftkit_makes():
    from ftkit.data.splits import holdout

    labels = ["a", "b"] * 50
    groups = [f"g{i // 4}" for i in range(100)]  # 25 groups of 4 identical inputs
    keep, held = holdout(labels, 0.2, 0, groups)
    assert {groups[i] for i in keep}.isdisjoint({groups[i] for i in held}) and len(held) == 20
    for fold in range(5):
        keep, held = fold_split(labels, 100, 5, fold, 0, groups)
        assert {groups[i] for i in keep}.isdisjoint({groups[i] for i in held})
    unique = [f"u{i}" for i in range(100)]
    assert holdout(labels, 0.2, 0, unique) == holdout(labels, 0.2, 0)  # no duplicates: the same split


def test_fit_splits_a_file_with_duplicates_without_leaking(tmp_path, tiny_model, sentiment):
    rows = sentiment["train"].read_text().splitlines()
    dup = tmp_path / "train.csv"
    dup.write_text("\n".join(rows + rows[1:41]) + "\n")  # 40 rows twice
    out = tmp_path / "run"
    result = run_cli("fit", "--out", out, "--seed", "1", *flags(tiny_model, {"train": dup}))
    assert result.returncode == 0, result.stderr
    doctor = json.loads((out / "doctor.json").read_text())
    assert {c["name"]: c["severity"] for c in doctor["checks"]}["leakage"] == "ok"
