""""Is it worth it?" baselines (`ftkit fit --baseline scratch --baseline probe`).

An outer loop over the one `fit` with a derived config (no second training loop): after the
fine-tuned run finishes, each baseline is an ordinary run folder in RUN_DIR/baselines/<name>/ with
the same data, splits, seed and budget and one thing changed:

- scratch: the same architecture from random weights (`model.init=random`), same epochs and lr;
- probe: the linear probe (body frozen, cached features), at the probe's own default lr; for a
  numeric target (tasks declaring `ridge_probe`) a ridge regression on the cached features instead,
  its alpha chosen by leave-one-out (runs/ridge.py);
- mean: predicting the training mean for every example (tasks declaring `mean_baseline`): read off
  the fine-tuned run's own metrics, no run folder; always listed for them, as it costs nothing.

The fine-tuned run's summary.json then gets a `baselines` section (metric, time, difference and a
plain verdict) and its report is rewritten. Finished baselines are reused, killed ones resume.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from ftkit.config import FitConfig, RetentionConfig, StrategyConfig, validate
from ftkit.errors import ConfigError
from ftkit.evaluation.metrics import DIRECTION, UNITS, better
from ftkit.runs.rundir import RunDir, resumed_config
from ftkit.tasks import get_task, tasks_with

log = logging.getLogger(__name__)

# name -> how the verdict calls it
BASELINES = {"mean": "predicting the training mean", "scratch": "training from scratch", "probe": "the linear probe"}
METHODS = {"ridge": "the ridge probe"}  # a baseline's `method` (its summary.json) -> how the verdict calls it
PROBE_EPOCHS = 10  # the probe baseline trains at least this long


def check_names(names) -> list[str]:
    """`--baseline` values (repeatable, or comma lists) -> known names, in order, once each."""
    out: list[str] = []
    items = [names] if isinstance(names, str) else list(names or [])
    for item in items:
        for name in (part.strip() for part in str(item).split(",")):
            if name and name not in BASELINES:
                raise ConfigError(f"--baseline {name!r}: unknown baseline (choose from {', '.join(BASELINES)})")
            if name and name not in out:
                out.append(name)
    return out


def fit_with_baselines(cfg: FitConfig, names, *, seeds: int = 1, resume: bool = False, overwrite: bool = False,
                       quiet: bool = False, command: list[str] | None = None) -> Path:
    """The fine-tuned run, then its baselines. With --resume, a finished fine-tuned run is kept and
    only the baselines still missing run (or continue), so a kill during a baseline loses little."""

    names = check_names(names)
    if seeds != 1:
        raise ConfigError("--baseline compares one fine-tuned run; drop --seeds (or run each seed with its own --out)")
    if "scratch" in names and cfg.model.init == "random":
        raise ConfigError("--baseline scratch: this run already starts from random weights (model.init=random)")
    if "mean" in names and not get_task(cfg.task).capabilities.mean_baseline:
        raise ConfigError(f"--baseline mean: predicting the training mean is a baseline of a numeric target "
                          f"({', '.join(tasks_with('mean_baseline'))}), not of {cfg.task}")
    if resume and cfg.out and RunDir(cfg.out).finished():
        path = Path(cfg.out)
        cfg = validate({**RunDir(path).saved_config(), "out": str(path)})
        log.info("%s: fine-tuned run already finished; running its baselines", path)
    else:
        from ftkit.runs.fit import fit_run  # torch: after the checks above

        cfg = resumed_config(cfg) if resume else cfg
        path = fit_run(cfg, resume=resume, overwrite=overwrite, quiet=quiet, command=command)
    run_baselines(path, cfg, names, resume=resume, overwrite=overwrite, quiet=quiet)
    return path


def derive(cfg: FitConfig, name: str, out: Path) -> FitConfig:
    """The baseline's config: everything of the fine-tuned run's (data, splits, seed, epochs, batch)
    with one change. Nobody keeps a baseline's weights, so none are saved."""
    cfg = cfg.model_copy(update={"out": str(out)}, deep=True)
    # Forgetting is the fine-tuned run's question; a random body has nothing to forget.
    cfg.retention = RetentionConfig()
    if name == "scratch":
        cfg.model.init = "random"
        if cfg.strategy.name != "full":
            # A frozen or adapter-only random body learns nothing: from scratch means every weight
            # trains, at full fine-tuning's default lr (the run's lr was tuned for its strategy).
            cfg.strategy = StrategyConfig(name="full")
            cfg.train.lr = None
    else:
        cfg.strategy = StrategyConfig(name="linear-probe")
        cfg.train.lr = None  # a head alone needs a far larger step: the probe's own default
        # On cached features an epoch costs well under a second: a probe stopped after the few epochs
        # a full fine-tune needs would be an unfairly weak baseline (validation picks the best epoch).
        cfg.train.epochs = max(cfg.train.epochs, PROBE_EPOCHS)
    return cfg


def run_baselines(run_dir, cfg: FitConfig, names, *, resume: bool = False, overwrite: bool = False,
                  quiet: bool = False) -> dict:
    """Run each baseline into RUN_DIR/baselines/<name>/ and add `baselines` to RUN_DIR/summary.json
    (kept entries of earlier baselines are merged). Returns that section."""
    run = RunDir(run_dir)
    main = run.read_summary()
    section = {k: v for k, v in main.get("baselines", {}).items() if k != "verdict"}
    task = get_task(cfg.task)
    names = check_names(names)
    if task.capabilities.mean_baseline and "mean" not in names:
        names = ["mean", *names]  # free: the fine-tuned run's metrics already hold it
    for name in names:
        if name == "mean":
            section[name] = mean_entry(main)
            continue
        out = run.path / "baselines" / name
        ridge = name == "probe" and task.capabilities.ridge_probe
        _fit_baseline(name, derive(cfg, name, out), resume, overwrite, quiet, ridge)
        section[name] = compare_runs(main, json.loads((out / "summary.json").read_text()), out)
    section = {k: section[k] for k in BASELINES if k in section}  # a stable order for readers
    section["verdict"] = verdict(section, still_improving=_still_improving(main))
    main["baselines"] = section
    run.write_summary(main)
    _write_report(run.path)
    return section


def _fit_baseline(name: str, cfg: FitConfig, resume: bool, overwrite: bool, quiet: bool, ridge: bool) -> None:
    from ftkit.runs.fit import fit_run
    from ftkit.runs.ridge import ridge_run

    run = RunDir(cfg.out)
    if run.finished() and not overwrite:
        log.info("baseline %s: already finished, reusing %s", name, run.path)
        return
    if ridge:  # seconds on cached features: a killed one starts over
        log.info("baseline %s (ridge on frozen features) -> %s", name, run.path)
        ridge_run(cfg, overwrite=overwrite or run.path.exists(), quiet=quiet,
                  command=["ftkit", "fit", "--baseline", name])
        return
    # A killed baseline continues from its checkpoint with --resume; otherwise it starts over.
    again = resume and run.config.is_file() and not overwrite
    log.info("baseline %s -> %s%s", name, run.path, " (resuming)" if again else "")
    fit_run(cfg, resume=again, overwrite=overwrite or (run.path.exists() and not again), quiet=quiet,
            command=["ftkit", "fit", "--baseline", name], save_model=False)


def compare_runs(main: dict, base: dict, base_dir: Path) -> dict:
    """One baseline's entry: its score on the split the fine-tuned run was judged on, the gain in
    points (positive: fine-tuning is better, whatever the metric's direction) and the times."""
    split = "test" if "test" in main["metrics"] else "validation"
    metric = _metric(main, split)
    value = base["metrics"].get(split, {}).get(metric)
    ours = main["metrics"][split].get(metric)
    ours_s, base_s = main["timing"]["train_seconds"], base["timing"]["train_seconds"]
    entry = {"run_dir": str(base_dir), "metric": metric, "split": split, "value": value, "finetuned_value": ours,
             "gain_points": _gain(metric, ours, value), "train_seconds": base_s, "finetuned_train_seconds": ours_s,
             "time_ratio": round(base_s / ours_s, 3) if ours_s > 0 else None,
             "seconds_to_match": seconds_to_match(main, base),
             "within_noise": _within_noise(main["metrics"][split], base["metrics"].get(split, {}), metric),
             "ci": base["metrics"].get(split, {}).get("ci", {}).get(metric)}
    if base.get("method"):  # a baseline fitted outside the loop (the ridge probe): what, with which alpha
        entry["method"] = base["method"]
    return entry


def mean_entry(main: dict) -> dict:
    """The predict-the-training-mean baseline's entry, from the fine-tuned run's own metrics."""
    split = "test" if "test" in main["metrics"] else "validation"
    metric = _metric(main, split)
    scores = main["metrics"][split]
    base = scores.get("mean_baseline") or {}
    value, ours = base.get(metric), scores.get(metric)
    return {"run_dir": None, "metric": metric, "split": split, "value": value, "finetuned_value": ours,
            "gain_points": _gain(metric, ours, value), "train_seconds": 0.0,
            "finetuned_train_seconds": main["timing"]["train_seconds"], "time_ratio": 0.0, "seconds_to_match": None,
            "within_noise": _within_noise(scores, {metric: value}, metric), "prediction": base.get("prediction")}


def _gain(metric: str, ours, value):
    """Positive: fine-tuning is better, whatever the metric's direction; points of a 0..1 score, and
    an error in the target's units (rmse, mae) in those units."""
    if value is None or ours is None:
        return None
    sign = 1 if DIRECTION.get(metric, True) else -1
    scale = 1 if metric in UNITS else 100
    return round(scale * sign * (ours - value), 4 if scale == 1 else 2)


def _metric(main: dict, split: str) -> str:
    """The fine-tuned run's selection metric; a loss is no score to read points off, so accuracy
    stands in when the run selected by loss."""
    metric = main["best"]["metric"]
    return "accuracy" if metric == "loss" and "accuracy" in main["metrics"][split] else metric


def seconds_to_match(main: dict, base: dict) -> float | None:
    """Training seconds the fine-tuned run needed to first reach the baseline's best validation
    score. Validation passes are logged by step, so elapsed time is the step's share of the run's
    train_seconds (steps are near-uniform in cost). None: it never did, or nothing to compare."""
    metric, target = main["best"]["metric"], base["best"]["value"]
    steps, seconds = main["timing"].get("steps") or 0, main["timing"]["train_seconds"]
    if target is None or base["best"]["metric"] != metric or steps <= 0:
        return None
    for record in main.get("history", []):
        value = record.get("validation", {}).get(metric)
        if value is not None and not better(metric, target, value):
            return round(seconds * record["step"] / steps, 3)
    return None


def _within_noise(ours: dict, theirs: dict, metric: str) -> bool:
    """True when either score lies inside the other's bootstrap CI (metrics[split].ci)."""
    a, b = ours.get(metric), theirs.get(metric)
    if a is None or b is None:
        return False
    inside = lambda v, ci: ci is not None and ci[0] <= v <= ci[1]
    return inside(b, ours.get("ci", {}).get(metric)) or inside(a, theirs.get("ci", {}).get(metric))


def verdict(section: dict, still_improving: bool = False) -> str:
    """Plain sentences, one per baseline, in the spirit of "fine-tuning gained +X points over
    scratch at Y× less time"."""
    sentences = [_sentence(name, section[name]) for name in BASELINES if name in section]
    entries = [section[name] for name in BASELINES if name in section]
    lost = any(e["gain_points"] is not None and (e["gain_points"] <= 0 or e["within_noise"]) for e in entries)
    if still_improving and lost:
        # An under-trained fine-tuned run (e.g. still at the majority class) loses for want of epochs,
        # which is not the same as fine-tuning not paying off.
        sentences.append("The fine-tuned run was still improving when it stopped: with more epochs this may change.")
    return " ".join(sentences)


def _still_improving(main: dict) -> bool:
    """Best validation score at the last evaluation, and no early stop."""
    history = main.get("history") or []
    return bool(history) and main["best"]["step"] == history[-1]["step"] and not main.get("stopped", {}).get("early")


def _sentence(name: str, e: dict) -> str:
    who = METHODS.get((e.get("method") or {}).get("name"), BASELINES[name])
    metric, gain = e["metric"], e["gain_points"]
    if gain is None:
        return f"No {e['split']} {metric} to compare with {who}."
    if gain <= 0 or e["within_noise"]:
        how = "better" if gain < 0 and not e["within_noise"] else "as good"
        noise = ", within noise" if e["within_noise"] else ""
        what = "the pretrained start is" if name == "scratch" else "fine-tuning is"
        return (f"{who[0].upper()}{who[1:]} is {how} ({metric} {e['value']:.4f} vs {e['finetuned_value']:.4f} "
                f"fine-tuned{noise}): {what} not worth it here.")
    head = (f"Fine-tuning lowered {metric} by {gain:.4g} ({e['finetuned_value']:.4g} vs {e['value']:.4g}) "
            f"against {who}" if metric in UNITS else f"Fine-tuning gained {gain:+.1f} points of {metric} over {who}")
    ours, theirs, match = e["finetuned_train_seconds"], e["train_seconds"], e["seconds_to_match"]
    if name == "mean":
        return f"{head}."
    if name == "probe":
        if theirs <= 0:
            return f"{head}; the probe took no measurable time."
        return f"{head}, at {ours / theirs:.1f}× the probe's time ({_secs(theirs)})."
    if match is None:
        return (f"{head} ({_secs(ours)} vs scratch's {_secs(theirs)}), though it never reached scratch's "
                "best validation score.")
    return (f"{head}, and matched scratch's best validation score in {_secs(match)}, "
            f"{theirs / max(match, 1e-9):.1f}× less than scratch's {_secs(theirs)}.")


def _secs(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def _write_report(run_dir: Path) -> None:
    """Rewrite the run's report.html and model card so they show the baselines; the run is done,
    so a rendering problem only logs a warning (after_run's contract)."""
    try:
        from ftkit.reporting import after_run
    except ImportError:  # an install without the reporting package
        return
    after_run(run_dir, card=True)
