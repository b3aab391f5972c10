"""report.html and the model card: written by fit, every section present when its data is,
outer-loop folders linking their runs, and the page checked in a real (headless) browser."""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import run_cli, summary

RUN_SECTIONS = ["overview", "metrics", "curves", "lr", "confusion", "per-class", "calibration", "data",
                "overfitting", "advice", "files"]

RETENTION = {"reference": "ref.csv", "n": 200, "labelled": True, "kind": "original-head",
             "measure": "original-task accuracy", "before": 0.91, "after": 0.83, "retained_pct": 91.2,
             "cka": 0.87, "rehearsal": 0.0, "verdict": "kept 91% of the original task: mild forgetting"}


def _baseline(name: str, value: float) -> dict:
    return {"run_dir": f"baselines/{name}", "metric": "accuracy", "split": "test", "value": value,
            "finetuned_value": 0.95, "gain_points": round(100 * (0.95 - value), 1), "train_seconds": 3.0,
            "finetuned_train_seconds": 6.0, "time_ratio": 2.0, "seconds_to_match": 1.5}


BASELINES = {"scratch": _baseline("scratch", 0.55), "probe": _baseline("probe", 0.80),
             "verdict": "fine-tuning beat training from scratch by 40 points and the linear probe by 15"}


@pytest.fixture
def enriched(finished_run, tmp_path) -> Path:
    """A copy of the finished run whose summary also holds retention and baselines."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    s = summary(run)
    s["retention"], s["baselines"] = RETENTION, BASELINES
    (run / "summary.json").write_text(json.dumps(s))
    return run


def _section_ids(page: str) -> list[str]:
    import re
    return re.findall(r'<section id="([^"]+)">', page)


def test_fit_writes_a_report_and_a_model_card(finished_run):
    page = (finished_run / "report.html").read_text()
    assert _section_ids(page) == RUN_SECTIONS  # no retention/baselines/groups: their data is absent
    assert 'name="viewport"' in page and "http://" not in page and "https://" not in page
    assert page.count('src="data:image/png;base64,') == 5  # curves, lr, confusion, per-class, reliability
    assert (finished_run / "model" / "README.md").is_file()


def test_report_shows_every_section_its_data_supports(enriched):
    result = run_cli("report", enriched)
    assert result.returncode == 0, result.stderr
    assert str(enriched / "report.html") in result.stdout
    page = (enriched / "report.html").read_text()
    ids = _section_ids(page)
    assert ids[:-2] == RUN_SECTIONS[:-2] + ["retention", "baselines"] and ids[-2:] == ["advice", "files"]
    assert RETENTION["verdict"] in page and BASELINES["verdict"] in page
    advice = page[page.index('<section id="advice">'):page.index('<section id="files">')]
    assert "retention: kept 91%" in advice and "baselines: fine-tuning beat" in advice
    # a summary without calibration or history: those sections go, the rest stays
    s = summary(enriched)
    del s["metrics"]["test"]["calibration"], s["retention"]
    s["history"] = []
    (enriched / "summary.json").write_text(json.dumps(s))
    (enriched / "metrics.jsonl").write_text("")
    import ftkit
    ids = _section_ids(ftkit.report(enriched).read_text())
    assert not {"calibration", "retention", "curves", "lr"} & set(ids) and "confusion" in ids


def test_model_card_front_matter_and_body_match_the_summary(enriched):
    from ftkit.reporting import write_card

    text = write_card(enriched).read_text()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    s = summary(enriched)
    assert front["base_model"] == s["model"] and front["pipeline_tag"] == "text-classification"
    assert front["library_name"] == "transformers" and "ftkit" in front["tags"]
    assert front["ftkit"]["strategy"] == s["strategy"] == "full" and front["ftkit"]["labels"] == s["labels"]
    results = {r["name"]: r["value"] for r in front["model-index"][0]["results"][0]["metrics"]}
    for split in ("test", "validation"):
        assert results[f"{split} accuracy"] == pytest.approx(s["metrics"][split]["accuracy"], abs=1e-6)
    body = text.split("---\n", 2)[2]
    low, high = s["metrics"]["test"]["ci"]["accuracy"]
    assert f"| test | accuracy | {s['metrics']['test']['accuracy']:.4f} | [{low:.4f}, {high:.4f}] |" in body
    for needle in ("## Limitations", "AutoModelForSequenceClassification.from_pretrained", "ftkit.load(",
                   "ftkit predict", "## Retention", "| scratch |", RETENTION["verdict"], f"`{s['strategy']}`"):
        assert needle in body, needle


def test_a_failing_report_never_fails_the_run(tmp_path, caplog):
    from ftkit.reporting import after_run

    (tmp_path / "summary.json").write_text("[1, 2]")  # JSON, but not a summary
    after_run(tmp_path, card=True)  # logs, does not raise
    assert "could not write the report" in caplog.text


def _outer_folders(finished_run: Path, root: Path) -> dict[str, Path]:
    """compare, cv and tune folders around copies of the finished run, as the outer loops write them."""
    from ftkit.runs.compare import _row
    from ftkit.runs.repeat import _aggregate

    folders = {}
    cmp = root / "cmp"
    for name in ("full", "bitfit"):
        shutil.copytree(finished_run, cmp / name, ignore=shutil.ignore_patterns("model", "report.html"))
    (cmp / "comparison.json").write_text(json.dumps([_row(n, cmp / n) for n in ("full", "bitfit")]))
    folders["compare"] = cmp
    cv = root / "cv"
    runs = []
    for fold in range(2):
        shutil.copytree(finished_run, cv / f"fold-{fold}", ignore=shutil.ignore_patterns("model"))
        runs.append((f"fold-{fold}", type("C", (), {"out": str(cv / f"fold-{fold}")})()))
    report = {"kind": "cross-validation", "folds": 2, "split_seed": 0,
              **_aggregate([summary(cv / n) for n, _ in runs], runs)}
    (cv / "cv.json").write_text(json.dumps(report))
    folders["cv"] = cv
    tune = root / "tune"
    shutil.copytree(finished_run, tune / "best", ignore=shutil.ignore_patterns("model"))
    pd.DataFrame([{"trial": 0, "state": "complete", "value": 0.7, "last_reported": 0.7, "param:lr_scale": 1.0,
                   "seconds": 3.0, "run_dir": str(tune / "trial-0000")},
                  {"trial": 1, "state": "pruned", "value": None, "last_reported": 0.5, "param:lr_scale": 3.0,
                   "seconds": 1.0, "run_dir": str(tune / "trial-0001")}]).to_csv(tune / "trials.csv", index=False)
    (tune / "tune.json").write_text(json.dumps({
        "metric": "accuracy", "direction": "maximize", "executor": "local",
        "best": {"trial": 0, "value": 0.7, "params": {"lr_scale": 1.0}}, "importances": {},
        "importances_note": "needs at least 2 complete trials (1 so far)", "seconds": 5.0,
        "trials": {"complete": 1, "pruned": 1, "failed": 0, "total": 2},
        "refit": {"run_dir": str(tune / "best"), "trial": 0, "on_all": False, "test": {"accuracy": 0.9}}}))
    folders["tune"] = tune
    return folders


def test_outer_loop_reports_link_each_run_report(finished_run, tmp_path):
    from ftkit.reporting import write_report

    folders = _outer_folders(finished_run, tmp_path)
    for kind, folder in folders.items():
        page = write_report(folder).read_text()
        assert "data:image/png;base64," in page, kind
    cmp = (folders["compare"] / "report.html").read_text()
    # the inner runs had no report: rendered on the way, and linked relatively
    assert 'href="full/report.html"' in cmp and (folders["compare"] / "bitfit" / "report.html").is_file()
    assert 'href="fold-1/report.html"' in (folders["cv"] / "report.html").read_text()
    tune = (folders["tune"] / "report.html").read_text()
    assert 'href="best/report.html"' in tune and "pruned" in tune and "needs at least 2 complete" in tune


# ---------------------------------------------------------------- in a browser

def _check_page(driver, page: Path, headings: list[str]) -> None:
    for width in (1280, 390):  # a wide screen, then a phone
        driver.set_window_size(width, 900)
        driver.get(page.resolve().as_uri())
        severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
        broken = driver.execute_script(
            "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt)")
        assert not broken and driver.execute_script("return document.images.length") > 0
        shown = driver.execute_script("return [...document.querySelectorAll('h2')].map(h => h.textContent)")
        assert all(any(h in s for s in shown) for h in headings), (headings, shown)
        overflow = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert overflow[0] <= overflow[1] + 1, f"{page} is wider than a {width} px window: {overflow}"


def test_reports_render_in_headless_chromium(browser, enriched, finished_run, tmp_path):
    from ftkit.reporting import write_report

    _check_page(browser, write_report(enriched), [
        "Overview", "Metrics", "Learning curves", "Learning-rate schedule", "Confusion matrix", "Per-class metrics",
        "Calibration", "Data and doctor findings", "Overfitting", "Retention", "Baselines", "Advice"])
    folders = _outer_folders(finished_run, tmp_path / "outer")
    _check_page(browser, write_report(folders["compare"]), ["Strategy comparison"])
    _check_page(browser, write_report(folders["tune"]), ["Study", "Trials", "Refit"])
