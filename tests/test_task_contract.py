"""Every registered task keeps the Task contract (tasks/base.py), and the engine asks tasks what
they can do (`task.capabilities`) instead of probing them with hasattr or comparing their names."""
import re
from dataclasses import fields
from pathlib import Path

import pytest

from ftkit.tasks import BUILTIN, TASKS, get_task, load_builtin, tasks_with
from ftkit.tasks.base import CAPABILITY_METHODS, INPUT_KINDS, Capabilities, Task

load_builtin()
SRC = Path(__file__).resolve().parents[1] / "src" / "ftkit"


@pytest.mark.parametrize("name", TASKS.names())
def test_task_satisfies_protocol(name):
    task = get_task(name)
    assert isinstance(task, Task)
    assert task.name == name
    assert isinstance(task.capabilities, Capabilities)
    assert task.default_metric in task.metrics
    assert task.input_kind in INPUT_KINDS


@pytest.mark.parametrize("name", TASKS.names())
@pytest.mark.parametrize("capability", sorted(CAPABILITY_METHODS))
def test_capability_iff_methods(name, capability):
    """A declared capability has its methods; an undeclared one has none (so nobody can call a
    method the task did not promise, nor miss one it has)."""
    task = get_task(name)
    has = [callable(getattr(type(task), method, None)) for method in CAPABILITY_METHODS[capability]]
    declared = getattr(task.capabilities, capability)
    assert has == [declared] * len(has), f"{name}: {capability}={declared}, methods {CAPABILITY_METHODS[capability]}"


def test_capability_table_names_real_fields():
    assert set(CAPABILITY_METHODS) <= {f.name for f in fields(Capabilities)}


def test_tasks_with_lists_builtins_in_order():
    assert tasks_with("retention_reader") == ["text-classification", "image-classification"]
    assert tasks_with("encoder_cache") == ["speech-recognition"]
    assert set(tasks_with("feature_probe")) <= set(BUILTIN)


# hasattr(task, ...) / getattr(task, ..., default) / getattr(get_task(...), ...)
PROBE = re.compile(r"\b(?:hasattr|getattr)\(\s*(?:\w+\.)?(?:task|get_task\([^)]*\))\s*,")
# cfg.task == "...", ctx.task not in SUPPORTED, task.name in (...), task == "..."
NAME_CHECK = re.compile(r"(?:\.task|\btask\.name|\btask|\[[\"']task[\"']\]|get\([\"']task[\"']\))"
                        r"\s*(?:==|!=|\bnot in\b|\bin\b)\s*[\w(\"'\[]")


def _offenders(pattern: re.Pattern) -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("tasks/"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code):
                found.append(f"{rel}:{n}: {line.strip()}")
    return found


def test_no_hasattr_on_tasks_outside_tasks():
    assert _offenders(PROBE) == []


def test_no_task_name_comparisons_outside_tasks():
    assert _offenders(NAME_CHECK) == []


def test_scan_patterns_catch_what_they_should():
    assert PROBE.search('if not hasattr(task, "zero_shot"):')
    assert PROBE.search('getattr(get_task(cfg.task), "advise_strategies", ())')
    assert NAME_CHECK.search('if cfg.task == "image-classification":')
    assert NAME_CHECK.search("if ctx.task not in SUPPORTED:")
    assert NAME_CHECK.search('text = cfg.task in ("text-classification", "token-classification")')
    assert NAME_CHECK.search('if facts.get("task") == "speech-recognition":')
    assert NAME_CHECK.search('if s["task"] != "text-classification":')
    assert not NAME_CHECK.search("task = get_task(cfg.task)")
    assert not PROBE.search('getattr(model, "base_model_prefix", "")')


def test_tasks_do_not_import_each_other_for_helpers():
    """Shared helpers live in tasks/common.py and data/labels.py, not in a sibling task."""
    for path in sorted((SRC / "tasks").glob("*.py")):
        text = path.read_text()
        if path.name != "text_classification.py":
            assert "tasks.text_classification import" not in text, path.name
    base = (SRC / "tasks" / "base.py").read_text() + (SRC / "tasks" / "common.py").read_text()
    assert not re.search(r"from ftkit\.tasks\.(?!base\b|common\b)\w+ import", base)


def test_data_does_not_import_task_modules():
    """data/ reads no task's module (its helpers are in data/labels.py); tasks/base.py, the
    contract itself, is left to tests/test_layers.py's layer rules."""
    for path in sorted((SRC / "data").glob("*.py")):
        assert not re.search(r"from ftkit\.tasks\.(?!base\b)\w+ import", path.read_text()), path.name
