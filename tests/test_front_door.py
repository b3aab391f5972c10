"""One front door (issue 17): every CLI command calls the `ftkit.api` function of its name, cli.py
reaches the engine only through it, and the shared flags take their help from the config's fields."""
import ast
import inspect
from pathlib import Path

import pytest
from conftest import run_cli

import ftkit
from ftkit import api, cli
from ftkit.config import field_info

# CLI command -> api function, where the names differ: `eval` reads better as a Python verb, and
# ftkit.predict is the predict module; `import` is a group, its commands are formats.
API_NAME = {"eval": "evaluate", "predict": "predict_file", "import": "import_checkpoint"}
# The names that are ftkit's subpackages or modules: ftkit.api.<name> only.
SUBPACKAGES = {"models", "tasks", "strategies", "datasets", "predict_file"}
ENGINE = ("ftkit.runs", "ftkit.hpo", "ftkit.data", "ftkit.selection", "ftkit.advisor")


def command_names() -> list[str]:
    names = [c.name or c.callback.__name__ for c in cli.app.registered_commands]
    return names + [g.name for g in cli.app.registered_groups]


def test_the_cli_has_its_commands():
    assert set(command_names()) >= {"fit", "cv", "doctor", "compare", "rank", "eval", "tune", "predict", "advise",
                                    "report", "export", "auto", "models", "tasks", "strategies", "datasets", "env",
                                    "import"}


@pytest.mark.parametrize("name", command_names())
def test_every_command_has_an_api_function(name):
    function = getattr(api, API_NAME.get(name, name))
    assert callable(function) and function.__doc__, name
    if API_NAME.get(name, name) not in SUBPACKAGES:
        assert getattr(ftkit, API_NAME.get(name, name)) is function


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found.add(node.module or "")
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


@pytest.mark.parametrize("module", [cli, __import__("ftkit.cli_import", fromlist=["x"])])
def test_the_cli_imports_no_engine_module(module):
    modules = imported_modules(Path(inspect.getfile(module)))
    assert not [m for m in modules if m.startswith(ENGINE)], modules


def test_every_command_calls_its_api_function():
    """Source scan: each command function's body names `api.<its function>`."""
    tree = ast.parse(Path(inspect.getfile(cli)).read_text())
    bodies = {node.name: ast.unparse(node) for node in tree.body if isinstance(node, ast.FunctionDef)}
    for command in cli.app.registered_commands:
        name = command.name or command.callback.__name__
        assert f"api.{API_NAME.get(name, name)}(" in bodies[command.callback.__name__], name


def test_fit_help_is_the_config_description():
    result = run_cli("fit", "--help", isolated=True)
    text = " ".join(result.stdout.replace("│", " ").split())
    assert result.returncode == 0, result.stderr
    for dotted in ("train.batch_size", "train.epochs", "data.train"):
        assert " ".join(field_info(dotted).description.split()) in text, dotted
    assert "[16]" in text  # the default, shown as typed (not eaten as rich markup)


def test_docstrings_render_as_paragraphs():
    """A command's help is its docstring as one paragraph, so `ftkit --help` rewraps it whole instead
    of breaking sentences where the source lines end."""
    for command in cli.app.registered_commands:
        assert command.help and "\n" not in command.help, command.name or command.callback.__name__
    result = run_cli("--help", isolated=True)
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "LogME, kNN and linear-probe accuracy of frozen features" in text


def test_api_refuses_bad_input_as_the_cli_does(tmp_path):
    """The checks the CLI ran itself before (fit's precheck, --baseline names, compare's variants)
    are api's now, so Python callers get the same early refusals."""
    missing = str(tmp_path / "missing.csv")
    with pytest.raises(ftkit.FtkitError, match="missing.csv: file not found"):
        ftkit.fit(model="minilm-l6", train=missing, out=str(tmp_path / "run"))
    with pytest.raises(ftkit.FtkitError, match="nosuch"):
        ftkit.fit(model="minilm-l6", train=missing, baselines=["nosuch"])
    with pytest.raises(ftkit.FtkitError, match="unknown strategy 'nosuch'"):
        ftkit.compare(model="minilm-l6", train=missing, strategies="full,nosuch", out=tmp_path / "cmp")
    with pytest.raises(ftkit.FtkitError, match="--data PATH"):
        ftkit.predict_file(tmp_path)
    assert not (tmp_path / "run").exists() and not (tmp_path / "cmp").exists()
