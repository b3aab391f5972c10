import pytest

from ftkit.config import build_config, parse_set
from ftkit.errors import ConfigError


def test_precedence_defaults_yaml_flags_set(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: a\ntrain:\n  lr: 1.0e-4\n  epochs: 2\n")
    cfg = build_config(path, {"train.lr": 2e-5}, ["train.epochs=5", "data.drop_empty=true"])
    assert cfg.model.name == "a"
    assert cfg.train.lr == 2e-5  # flag beats YAML
    assert cfg.train.epochs == 5  # --set beats YAML
    assert cfg.data.drop_empty is True
    assert cfg.train.batch_size == 16  # default kept


def test_set_reads_scientific_notation_as_number():
    assert parse_set("train.lr=3e-5") == ("train.lr", 3e-5)
    assert parse_set("train.eval_every=50") == ("train.eval_every", 50)
    assert parse_set("model.name=foo/bar") == ("model.name", "foo/bar")


def test_one_error_lists_every_problem_with_flag_and_value():
    with pytest.raises(ConfigError) as err:
        build_config(None, {"train.lr": -1, "train.batch_size": 0}, ["train.lrr=3", "train.precision=fp8"])
    message = str(err.value)
    assert "--lr" in message and "-1" in message
    assert "--batch-size" in message
    assert "unknown setting 'train.lrr'" in message
    assert "--set train.precision" in message and "fp8" in message
    assert "\n" not in message


def test_bad_set_syntax_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        build_config(None, {}, ["train.lr"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml line"):
        build_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        build_config(tmp_path / "missing.yaml")
