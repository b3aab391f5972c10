"""--tracking mlflow: runs logged to a real local MLflow store (SQLite in tmp_path), read back
with MlflowClient."""
from __future__ import annotations

import json

import pytest
from conftest import fast_flags, run_cli, summary

import ftkit
from ftkit.config import build_config
from ftkit.errors import ConfigError
from ftkit.runs.fit import fit_run
from ftkit.tracking import flat_params, run_kind

mlflow = pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder whose mlruns/ store the tests share (creating a SQLite store runs MLflow's
    migrations: seconds); each test logs to its own experiment."""
    return tmp_path_factory.mktemp("project")


def _only_run(uri: str, experiment: str):
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    assert len(runs) == 1
    return client, runs[0]


def test_fit_logs_params_step_metrics_summary_and_run_folder(project, tiny_model, sentiment, monkeypatch):
    monkeypatch.chdir(project)  # no --tracking-uri: the store is ./mlruns/mlflow.db
    out = project / "runs" / "one"
    ftkit.fit(model=str(tiny_model), train=str(sentiment["train"]), test=str(sentiment["test"]), out=str(out),
              epochs=2, batch_size=8, lr=3e-3, quiet=True, tracking="mlflow",
              overrides=["train.threads=1", "tracking.experiment=fit"])
    assert (project / "mlruns" / "mlflow.db").is_file()
    client, run = _only_run("sqlite:///mlruns/mlflow.db", "fit")  # what `mlflow ui` run here reads
    assert run.info.status == "FINISHED" and run.info.run_name == "one"
    assert float(run.data.params["train.lr"]) == pytest.approx(3e-3)
    assert run.data.params["model.name"] == str(tiny_model)
    assert run.data.tags["ftkit.kind"] == "fit" and run.data.tags["ftkit.run_dir"] == str(out.resolve())

    losses = client.get_metric_history(run.info.run_id, "train/loss")
    assert len(losses) >= 3 and [m.step for m in losses] == sorted({m.step for m in losses})
    assert len(client.get_metric_history(run.info.run_id, "validation/accuracy")) == 2  # one per epoch
    s = summary(out)
    assert run.data.metrics["final/test/accuracy"] == pytest.approx(s["metrics"]["test"]["accuracy"])
    assert run.data.metrics["timing/steps"] == s["timing"]["steps"]

    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"summary.json", "config.yaml", "metrics.jsonl", "model", "tracking.json"} <= artifacts
    assert "checkpoints" not in artifacts
    assert any(a.path.endswith(".safetensors") for a in client.list_artifacts(run.info.run_id, "model"))
    assert run.info.artifact_uri.startswith((project / "mlruns" / "artifacts").as_uri())
    assert json.loads((out / "tracking.json").read_text())["run_id"] == run.info.run_id


def test_interrupted_run_is_killed_then_resumed_into_the_same_mlflow_run(project, tiny_model, sentiment):
    (project / "mlruns").mkdir(exist_ok=True)
    uri = f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"
    cfg = build_config(values={"model.name": str(tiny_model), "data.train": str(sentiment["train"]),
                               "out": str(project / "runs" / "resumed"), "train.epochs": 2, "train.batch_size": 8,
                               "train.lr": 3e-3, "train.threads": 1, "train.checkpoint_every": 5,
                               "tracking.backend": "mlflow", "tracking.uri": uri, "tracking.experiment": "resume"})

    def interrupt(record: dict) -> bool:
        raise KeyboardInterrupt  # Ctrl-C at the first validation

    with pytest.raises(KeyboardInterrupt):
        fit_run(cfg, quiet=True, on_validate=interrupt)
    client, run = _only_run(uri, "resume")
    assert run.info.status == "KILLED"

    fit_run(cfg, quiet=True, resume=True)
    client, resumed = _only_run(uri, "resume")  # still one run: the same one, continued
    assert resumed.info.run_id == run.info.run_id and resumed.info.status == "FINISHED"
    # one validation per epoch; the one logged before Ctrl-C is logged again when redone
    assert len({m.step for m in client.get_metric_history(run.info.run_id, "validation/accuracy")}) == 2
    assert summary(project / "runs" / "resumed")["resumed"] is True


def test_bad_tracking_uri_fails_before_anything_is_written(tmp_path, tiny_model, sentiment):
    out = tmp_path / "run"
    result = run_cli(*fast_flags(tiny_model, sentiment, out, "--tracking", "mlflow", "--tracking-uri",
                                 "nosuch://nowhere"))
    assert result.returncode == 2
    assert "--tracking-uri nosuch://nowhere: cannot open the MLflow store" in result.stderr
    assert not out.exists()  # refused before the run folder was written


def test_unknown_tracking_backend_names_the_flag():
    with pytest.raises(ConfigError, match="--tracking: .*'wandb'"):
        ftkit.api.make_config(None, {"tracking": "wandb"})


@pytest.mark.parametrize("command, kind", [
    (["ftkit", "fit", "--train", "t.csv"], "fit"), (["ftkit.fit(...)"], "fit"), (["ftkit", "fold-2"], "cv-fold"),
    (["ftkit", "seed-3"], "seed"), (["ftkit", "compare"], "compare"), (["ftkit", "tune", "(trial)"], "tune-trial"),
    (["ftkit", "tune", "(refit)"], "tune-refit"), (["ftkit", "auto", "(final)"], "auto-final"),
    (["ftkit", "fit", "--baseline", "scratch"], "baseline")])
def test_outer_loops_tag_their_runs_by_command(command, kind):
    assert run_kind(command) == kind


def test_params_are_dotted_text_within_mlflow_limits():
    params = flat_params({"train": {"lr": 3e-5, "patience": None}, "data": {"train": "x" * 10_000}})
    assert params["train.lr"] == "3e-05" and params["train.patience"] == "null"
    assert len(params["data.train"]) == 6000
