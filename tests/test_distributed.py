"""`ftkit fit --workers N` on Ray Train (issue 19): the same loop in N workers.

Fast tests: the batch shards, the config section, and the refusals (which run before Ray starts).
The Ray runs use a local instance of 2 one-core workers on tiny models; the deterministic setup
(no dropout, fp32) makes 2 workers equal 1 worker at the same global batch within float
tolerance. The kill and resume tests need several Ray launches (~30 s each) and are `slow`; the
NCCL test is `gpu` and skips without CUDA.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import ftkit
from ftkit.config import build_config
from ftkit.errors import ConfigError
from ftkit.training.batches import epoch_batches, shard

from conftest import run_cli, summary

TOL = 1e-4  # 2 workers vs 1: the same sums in another order, over a few dozen steps


def exact(tiny_model, sentiment, out: Path, **sets) -> dict:
    """A deterministic tiny run: no dropout, fp32; batch 7 leaves remainders (7 = 4 + 3, last 6)."""
    overrides = {"model.dropout": 0.0, "train.precision": "fp32", "train.threads": 1, "eval.bootstrap": 0,
                 "train.checkpoint_every": 5, "train.log_every": 1, **sets}
    return dict(model=str(tiny_model), train=str(sentiment["train"]), test=str(sentiment["test"]), out=str(out),
                epochs=2, batch_size=7, lr=3e-3, quiet=True, overrides=overrides)


def scores(run: Path) -> dict:
    s = summary(run)
    return {"test": s["metrics"]["test"], "validation": s["metrics"]["validation"], "best": s["best"]["value"],
            "history": [h["validation"] for h in s["history"]], "steps": s["timing"]["steps"]}


def assert_close(a: dict, b: dict, tol: float = TOL) -> float:
    """Every number of `a` within `tol` of `b`'s; returns the largest difference."""
    worst = 0.0

    def walk(x, y, where):
        nonlocal worst
        if isinstance(x, dict):
            assert set(x) == set(y), where
            for k in x:
                walk(x[k], y[k], f"{where}.{k}")
        elif isinstance(x, list):
            assert len(x) == len(y), where
            for i, (u, v) in enumerate(zip(x, y)):
                walk(u, v, f"{where}[{i}]")
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            worst = max(worst, abs(x - y))
            assert abs(x - y) <= tol, f"{where}: {x} vs {y}"
    walk(a, b, "")
    return worst


# ------------------------------------------------------------------ fast: no Ray

@pytest.mark.parametrize("n,size", [(7, 2), (16, 3), (1, 2), (5, 8)])
def test_shards_tile_the_global_batch(n, size):
    rows = np.arange(100, 100 + n)
    parts = [shard(rows, r, size) for r in range(size)]
    real = [p for p, w in parts if w > 0]
    assert np.array_equal(np.concatenate(real), rows)  # every row once, in order
    assert sum(w for _, w in parts) == pytest.approx(1.0)
    assert max(len(p) for p in real) - min(len(p) for p in real) <= 1  # remainder spread one row each
    assert all(len(p) == 1 and w == 0 for p, w in parts if w == 0)  # an idle worker still joins the sum


def test_batch_order_is_the_same_for_any_team():
    """Workers shard the one-process batches: the per-epoch order stays a function of (seed, epoch)."""
    lengths = np.random.default_rng(0).integers(3, 30, 50)
    a, b = epoch_batches(lengths, 8, 3, 1, True), epoch_batches(lengths, 8, 3, 1, True)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_config_section_names_the_flag():
    cfg = build_config(values={"distributed.workers": 2, "distributed.cpus_per_worker": 1})
    assert cfg.distributed.workers == 2 and cfg.distributed.address is None
    with pytest.raises(ConfigError, match="--workers"):
        build_config(values={"distributed.workers": 0})
    with pytest.raises(ConfigError, match="--gpus-per-worker"):
        build_config(values={"distributed.gpus_per_worker": -1})


def test_one_worker_stays_the_one_process_path(tiny_model, sentiment, tmp_path):
    """distributed.workers=1 (the default) never starts Ray; the summary has no `distributed`."""
    run = ftkit.fit(**exact(tiny_model, sentiment, tmp_path / "one", **{"train.epochs": 1}))
    assert "distributed" not in summary(run.path)
    import sys
    assert "ray" not in sys.modules or not __import__("ray").is_initialized()


@pytest.mark.parametrize("sets,words", [
    (["distributed.workers=64"], "do not fit this machine"),
    (["distributed.workers=2", "distributed.cpus_per_worker=64"], "do not fit this machine"),
    (["distributed.workers=2", "distributed.gpus_per_worker=1"], "GPU"),
])
def test_refused_before_anything_is_written(tiny_model, sentiment, tmp_path, sets, words):
    import torch

    if "distributed.gpus_per_worker=1" in sets and torch.cuda.device_count() >= 2:
        pytest.skip("this machine has the GPUs")
    out = tmp_path / "refused"
    flags = ["fit", "--model", tiny_model, "--train", sentiment["train"], "--out", out, "--quiet"]
    result = run_cli(*flags, *[x for s in sets for x in ("--set", s)])
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], result.stderr
    assert not out.exists()


# ------------------------------------------------------------------ Ray: 2 local workers

@pytest.fixture(scope="module")
def two_workers(tiny_model, sentiment, tmp_path_factory) -> Path:
    """One uninterrupted 2-worker run, shared by the tests that compare against it."""
    out = tmp_path_factory.mktemp("dist") / "two"
    return ftkit.fit(**exact(tiny_model, sentiment, out, **{"distributed.workers": 2})).path


def test_two_workers_equal_one_worker(tiny_model, sentiment, tmp_path, two_workers):
    one = ftkit.fit(**exact(tiny_model, sentiment, tmp_path / "one")).path
    worst = assert_close(scores(two_workers), scores(one))
    s = summary(two_workers)
    assert s["distributed"]["workers"] == 2 and s["distributed"]["backend"] == "gloo"
    assert s["distributed"]["address"] == "local"
    per = s["distributed"]["per_worker"]
    assert [w["rank"] for w in per] == [0, 1] and all(w["samples_per_second"] > 0 for w in per)
    assert sum(w["samples"] for w in per) == s["timing"]["samples"]  # the shards tile every batch
    # once, by rank 0: one validation record per evaluation, the usual files
    records = [json.loads(line) for line in (two_workers / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in records if r["split"] == "validation"]) == len(s["history"])
    assert (two_workers / "model").is_dir() and (two_workers / "predictions.csv").is_file()
    assert not (two_workers / "checkpoints").exists()
    print(f"2 workers vs 1: largest difference {worst:.2e}")


@pytest.mark.slow
def test_killed_worker_is_restarted_from_the_last_checkpoint(tiny_model, sentiment, tmp_path, two_workers,
                                                             monkeypatch):
    """Worker 1 dies (SIGKILL) after its 8th step; Ray restarts the team, which resumes from the
    checkpoint of step 5 and ends exactly as the uninterrupted run with the same N."""
    marker = tmp_path / "killed-once"
    monkeypatch.setenv("FTKIT_KILL_WORKER", f"1:8:{marker}")
    run = ftkit.fit(**exact(tiny_model, sentiment, tmp_path / "killed", **{"distributed.workers": 2})).path
    assert marker.exists()  # it did die
    assert scores(run) == scores(two_workers)
    assert summary(run)["resumed"] is True


@pytest.mark.slow
def test_resume_after_the_whole_job_died(tiny_model, sentiment, tmp_path, two_workers):
    """No restarts allowed: a worker's death ends the job (the command fails); `--resume` with the
    same N finishes it with the uninterrupted run's metrics."""
    out, marker = tmp_path / "died", tmp_path / "killed-once"
    flags = ["fit", "--model", tiny_model, "--train", sentiment["train"], "--test", sentiment["test"], "--out", out,
             "--epochs", "2", "--batch-size", "7", "--lr", "3e-3", "--quiet"]
    sets = ["model.dropout=0.0", "train.precision=fp32", "train.threads=1", "eval.bootstrap=0",
            "train.checkpoint_every=5", "train.log_every=1", "distributed.workers=2", "distributed.max_failures=0"]
    sets = [x for s in sets for x in ("--set", s)]
    os.environ["FTKIT_KILL_WORKER"] = f"0:12:{marker}"
    try:
        died = run_cli(*flags, *sets, isolated=True)
    finally:
        del os.environ["FTKIT_KILL_WORKER"]
    assert died.returncode != 0 and marker.exists() and not (out / "summary.json").exists()
    assert (out / "checkpoints" / "latest.json").is_file()
    resumed = run_cli(*flags, *sets, "--resume", isolated=True)
    assert resumed.returncode == 0, resumed.stderr
    assert scores(out) == scores(two_workers)




@pytest.fixture(scope="module")
def shared_ray():
    """One local Ray instance for the many short runs below (each fit reuses it instead of
    starting its own); started last in this module, after the tests that set worker env vars."""
    import logging
    import tempfile

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             _temp_dir=tempfile.mkdtemp(prefix="ftkit-ray-test-"))
    yield
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("strategy,sets", [
    ("llrd", {}), ("lora", {"strategy.dropout": 0.0}), ("bitfit", {}), ("freeze-bottom", {}),
    ("gradual-unfreeze", {}), ("lp-ft", {"strategy.probe_epochs": 1}), ("linear-probe", {}),
])
def test_every_strategy_two_workers_equal_one(tiny_model, sentiment, tmp_path, shared_ray, strategy, sets):
    kw = exact(tiny_model, sentiment, tmp_path / "one", **sets)
    one = ftkit.fit(**kw, strategy=strategy).path
    kw = exact(tiny_model, sentiment, tmp_path / "two", **sets, **{"distributed.workers": 2})
    two = ftkit.fit(**kw, strategy=strategy).path
    assert summary(two)["distributed"]["workers"] == 2
    assert_close(scores(two), scores(one))


@pytest.mark.slow
def test_ner_and_images_train_on_two_workers(tiny_model, ner, tiny_resnet, images, tmp_path, shared_ray):
    """Other tasks run too. Not compared with one worker: NER's loss is a mean over tokens (the
    shards weigh rows) and BatchNorm sees each worker's shard, so the numbers differ a little."""
    common = dict(epochs=1, batch_size=8, quiet=True, overrides={"distributed.workers": 2, "train.threads": 1,
                                                                  "eval.bootstrap": 0})
    for task, model, data in (("token-classification", tiny_model, ner), ("image-classification", tiny_resnet, images)):
        run = ftkit.fit(task=task, model=str(model), train=str(data["train"]), test=str(data["test"]),
                        out=str(tmp_path / task), lr=3e-3, **common).path
        assert summary(run)["distributed"]["workers"] == 2 and "test" in summary(run)["metrics"]


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.gpu
def test_nccl_workers_equal_one_process(tiny_model, sentiment, tmp_path):
    """NCCL: 2 GPU workers where there are 2 GPUs; on a 1-GPU machine one NCCL worker on a Ray
    instance started here (--address auto), still the whole distributed path (world size 1)."""
    import logging
    import tempfile

    import ray

    gpus = _cuda_devices()
    if not gpus:
        pytest.skip("needs CUDA")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, num_gpus=gpus, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
             _temp_dir=tempfile.mkdtemp(prefix="ftkit-ray-gpu-"))
    try:
        workers = 2 if gpus >= 2 else 1
        sets = {"train.device": "cuda", "distributed.gpus_per_worker": 1, "distributed.workers": workers,
                "distributed.address": "auto"}
        two = ftkit.fit(**exact(tiny_model, sentiment, tmp_path / "two", **sets)).path
    finally:
        ray.shutdown()
    one = ftkit.fit(**exact(tiny_model, sentiment, tmp_path / "one", **{"train.device": "cuda"})).path
    d = summary(two)["distributed"]
    assert d["backend"] == "nccl" and d["workers"] == workers
    assert_close(scores(two), scores(one), tol=1e-3)


# ------------------------------------------------------------------ outer loops: --workers-per-trial

def _tune_flags(tiny_model, sentiment, out: Path) -> list:
    return ["tune", "--model", tiny_model, "--train", sentiment["train"], "--out", out, "--trials", "2", "--quiet"]


@pytest.mark.parametrize("flags,words", [
    (["--workers-per-trial", "2"], "need --executor ray"),  # the local executor runs trials in this process
    (["--workers-per-trial", "0", "--executor", "ray"], "expected at least 1"),
    (["--workers-per-trial", "2", "--executor", "ray", "--trial-cpus", "2"], "--cpus-per-worker"),
    (["--workers-per-trial", "1024", "--executor", "ray"], "do not fit this machine"),
    (["--workers-per-trial", "2", "--executor", "ray", "--set", "distributed.address=auto"], "give it as --address"),
])
def test_tune_workers_per_trial_refused_before_ray(tiny_model, sentiment, tmp_path, flags, words):
    out = tmp_path / "t"
    result = run_cli(*_tune_flags(tiny_model, sentiment, out), *flags)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "--workers-per-trial" in lines[0] and words in lines[0], result.stderr
    assert not out.exists()


def test_cv_workers_per_trial_refused_before_ray(tiny_model, sentiment, tmp_path):
    out = tmp_path / "cv"
    result = run_cli("cv", "--model", tiny_model, "--train", sentiment["train"], "--out", out, "--folds", "2",
                     "--workers-per-trial", "1024", "--quiet")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].count("--workers-per-trial 1024") == 1 and "do not fit" in lines[0]
    assert not out.exists()


def test_an_in_process_hook_cannot_reach_workers(tiny_model, sentiment, tmp_path):
    """fit_run's on_validate of the local executor (a plain callable) is refused on several workers
    before Ray starts; only a distributed.Relay (the Ray executor's) travels to them."""
    from ftkit.runs.fit import fit_run

    cfg = build_config(values={"model.name": str(tiny_model), "data.train": str(sentiment["train"]),
                               "distributed.workers": 2, "out": str(tmp_path / "run")})
    with pytest.raises(ConfigError, match="--workers-per-trial.*--executor ray"):
        fit_run(cfg, on_validate=lambda record: False)
    assert not (tmp_path / "run").exists()


def test_trial_placement_adds_up():
    """A trial on several workers reserves workers x cpus_per_worker (and GPUs); trials run at most
    as many at a time as fit the cluster, and one that cannot be placed is refused by its flag."""
    pytest.importorskip("ray.tune")
    from ftkit.config import DistributedConfig
    from ftkit.hpo.ray_executor import check_cluster, trial_slots

    assert trial_slots(DistributedConfig(), {"CPU": 9}, 3) == 3  # one-process trials: --trial-cpus each
    assert trial_slots(DistributedConfig(workers=2, cpus_per_worker=2), {"CPU": 9}, 1) == 2
    assert trial_slots(DistributedConfig(workers=2, gpus_per_worker=1), {"CPU": 16, "GPU": 3}, 1) == 1
    check_cluster(DistributedConfig(workers=2, cpus_per_worker=2), {"CPU": 4}, None)
    with pytest.raises(ConfigError, match=r"--workers-per-trial 2: .* 2 workers x 2 CPU .*ray://head:10001 \(3 CPUs"):
        check_cluster(DistributedConfig(workers=2, cpus_per_worker=2), {"CPU": 3}, "ray://head:10001")
    with pytest.raises(ConfigError, match="--gpus-per-worker"):
        check_cluster(DistributedConfig(workers=2, gpus_per_worker=1), {"CPU": 8, "GPU": 1}, None)


def test_asha_asks_a_trial_on_workers_to_stop(tmp_path):
    """ASHA's own decisions (a real ASHAScheduler bracket; the trials are stand-ins for Tune's, which
    carry an id and the config): a trial on several workers is not killed (its Ray Train placement
    group would outlive it) but finds the stop file at its next validation and ends as pruned."""
    pytest.importorskip("ray.tune")
    from types import SimpleNamespace

    from ftkit.hpo.ray_executor import FINISHED, STOP_FILE, AskingASHA, Score

    asha = AskingASHA(time_attr="training_iteration", max_t=8, grace_period=1, reduction_factor=2, out=tmp_path)
    asha.set_search_properties("value", "max")
    trials = [SimpleNamespace(trial_id=f"t{n}", config={"trial_number": n}) for n in range(4)]
    for trial in trials:
        asha.on_trial_add(None, trial)
    for trial, value in zip(trials[:3], (0.9, 0.95, 0.1)):
        assert asha.on_trial_result(None, trial, {"training_iteration": 1, "value": value}) == asha.CONTINUE
    stop = tmp_path / "trial-0002" / STOP_FILE
    assert stop.is_file() and not (tmp_path / "trial-0000" / STOP_FILE).exists()  # only the poor one
    assert asha.on_trial_result(None, trials[3], {"training_iteration": 1, "value": 0.0, FINISHED: 1}) == asha.STOP

    reports: list = []
    score = Score("accuracy", reports.append, str(stop))
    assert score({"validation": {"accuracy": 0.25}}) is True and reports == [{"value": 0.25}]
    assert Score("accuracy", reports.append, str(tmp_path / "none"))({"validation": {"accuracy": 0.5}}) is False


@pytest.mark.slow
def test_tune_trials_train_on_two_workers_each(tiny_model, sentiment, tmp_path, shared_ray):
    """--executor ray --workers-per-trial 2: each trial is a 2-worker fit whose validation scores
    reach ASHA and Optuna (Ray Train's report on every worker, TuneReportCallback, Tune). Trial 0
    (lr 5e-3) learns by its 3rd validation (of 9, every 9 steps); trial 1 (lr 1e-7) stays at
    chance, so ASHA stops it at its rung of 4 reports and it ends, as pruned, at a following
    validation. The refit trains on 2 workers too."""
    import optuna
    from optuna.trial import TrialState

    out = tmp_path / "t"
    report = ftkit.tune(model=str(tiny_model), train=str(sentiment["train"]), test=str(sentiment["test"]), out=out,
                        trials=2, executor="ray", workers_per_trial=2, epochs=3, batch_size=8,
                        space={"train.lr": {"low": 1e-7, "high": 6e-3, "log": True}}, quiet=True,
                        points=[{"train.lr": 5e-3}, {"train.lr": 1e-7}],
                        overrides={"eval.bootstrap": 0, "model.dropout": 0.0, "train.precision": "fp32",
                                   "train.patience": None})
    study = optuna.load_study(study_name="ftkit", storage=f"sqlite:///{out / 'study.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED]
    for trial in study.trials:
        s = summary(out / f"trial-{trial.number:04d}")
        assert s["distributed"]["workers"] == 2 and s["outputs"]["test_scored"] is False
        assert len(trial.intermediate_values) >= len(s["history"]) >= 2  # each validation, reported
        assert not (out / f"trial-{trial.number:04d}" / "stop-requested").exists()
    first, second = (summary(out / f"trial-{n:04d}") for n in (0, 1))
    assert study.trials[0].value == first["best"]["value"] == 1.0 and first["stopped"]["reason"] is None
    # asked after its 4th report; the request reaches the workers while they train on (a validation
    # or two later on this machine), well before the 9 validations of a full run
    assert second["stopped"]["reason"] == "pruned" and 5 <= len(second["history"]) < len(first["history"]) == 9
    assert report["trials"]["complete"] == 1 and report["trials"]["pruned"] == 1
    best = summary(out / "best")
    assert best["distributed"]["workers"] == 2 and best["metrics"]["test"]["accuracy"] > 0.9


@pytest.mark.slow
def test_cv_folds_train_on_two_workers_each(tiny_model, sentiment, tmp_path, shared_ray):
    """ftkit cv --workers-per-trial 2: the same folds as one process, each an ordinary run folder
    with a `distributed` block, and (deterministic setup) the same scores within float tolerance."""
    kw = exact(tiny_model, sentiment, tmp_path / "unused")
    for key in ("test", "out"):
        kw.pop(key)
    kw["epochs"] = 1
    one = ftkit.cv(**kw, folds=2, out=tmp_path / "one")
    two = ftkit.cv(**kw, folds=2, out=tmp_path / "two", workers_per_trial=2)
    for fold in range(2):
        s = summary(tmp_path / "two" / f"fold-{fold}")
        assert s["distributed"]["workers"] == 2 and s["metrics"]["test"]["n"] == 120
        assert s["data"] == summary(tmp_path / "one" / f"fold-{fold}")["data"]
    assert two["split_seed"] == one["split_seed"]
    assert_close(two["test"], one["test"])
