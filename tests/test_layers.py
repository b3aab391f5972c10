"""Layers point down, and modules import no cycle (DESIGN.md, issue 17).

The layer order is the import-linter contract in pyproject.toml ([tool.importlinter]); its
ignore_imports list names the upward imports still left. The cycle check reads the same import
graph (grimp, which import-linter builds on), imports inside functions included: a cycle a lazy
import hides still ties the two modules together. bench/layers.py prints the counts.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parents[1]

# Cycles still left, each a set of modules; a new cycle, or a known one that grows, fails.
KNOWN_CYCLES: list[set[str]] = []


def strongly_connected(graph) -> list[set[str]]:
    """The strongly connected components of grimp's import graph with more than one module."""
    g = nx.DiGraph((m, w) for m in graph.modules for w in graph.find_modules_directly_imported_by(m))
    return [set(c) for c in nx.strongly_connected_components(g) if len(c) > 1]


def test_no_new_import_cycle():
    graph = grimp.build_graph("ftkit", exclude_type_checking_imports=True, cache_dir=None)
    new = [sorted(c) for c in strongly_connected(graph) if not any(c <= known for known in KNOWN_CYCLES)]
    assert not new, f"import cycle(s) between modules: {new}; move the shared piece down into the lower module"


def test_layers_point_down():
    """The contract in pyproject.toml: no import runs upward, except the ones it lists."""
    lint = Path(sys.executable).with_name("lint-imports")  # import-linter's command ([dev] extra)
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"an import runs upward (layers in pyproject.toml [tool.importlinter]):\n{done.stdout}"
