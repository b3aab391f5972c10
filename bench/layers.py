"""Measure how ftkit's modules import each other (issue 17, "layers that only point down").

Prints, for src/ftkit: internal import edges (module level vs inside functions), import cycles
(strongly connected components of the full graph and of the module-level graph alone), upward
imports against LAYERS below, private cross-module imports (``from ftkit.x import _name``) and
the number of functions longer than 50 lines.

    .venv/bin/python bench/layers.py > bench/results/layers_after.txt

Static (ast) only: nothing in ftkit is imported. ``if TYPE_CHECKING:`` imports are not counted
(they never run). Package ``__init__`` modules are named by the package (``ftkit.data``).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "src" / "ftkit"
LONG = 50

# Layer order, low -> high (DESIGN.md "Layers point down" + issue 17). A module may import its
# own layer or lower ones. First matching prefix wins, so list specific names before packages.
# Written down where the code differs from the first draft:
#   - lazy, locks, failpoints, io, ui, config, errors, registry are the core; `datasets`
#     (named public datasets) reads files only, so it sits with data.
#   - tracking and reporting read run folders and are used by runs.fit: engine layer.
#   - cli_import / cli_options / cli_output are CLI helpers: surface layer with cli.
LAYERS: list[tuple[str, list[str]]] = [
    ("core", ["ftkit.errors", "ftkit.io", "ftkit.registry", "ftkit.lazy", "ftkit.failpoints",
              "ftkit.locks", "ftkit.config", "ftkit.ui", "ftkit.version"]),
    ("parts", ["ftkit.data", "ftkit.datasets", "ftkit.models", "ftkit.evaluation",
               "ftkit.training", "ftkit.strategies"]),
    ("tasks", ["ftkit.tasks"]),
    ("engine", ["ftkit.runs.rundir", "ftkit.runs.fit", "ftkit.runs.probe", "ftkit.runs.precheck",
                "ftkit.reporting", "ftkit.tracking", "ftkit.distributed", "ftkit.serving", "ftkit.onnxrt", "ftkit.webstudio"]),
    ("outer", ["ftkit.runs.auto", "ftkit.runs.compare", "ftkit.runs.repeat",
               "ftkit.runs.baselines", "ftkit.runs", "ftkit.hpo", "ftkit.selection",
               "ftkit.advisor"]),
    ("api", ["ftkit.api", "ftkit.predict"]),
    ("surface", ["ftkit.cli", "ftkit.cli_import", "ftkit.cli_options", "ftkit.cli_output",
                 "ftkit"]),
]


def layer_of(mod: str) -> tuple[int, str]:
    for i, (name, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if mod == p or mod.startswith(p + "."):
                return i, name
    return len(LAYERS), "?"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class Visitor(ast.NodeVisitor):
    """Collects (target, names, where, lineno) imports; where is "module" or "function"."""

    def __init__(self, mod: str, is_pkg: bool, known: set[str]):
        self.mod, self.is_pkg, self.known = mod, is_pkg, known
        self.depth = 0
        self.imports: list[tuple[str, list[str], str, int]] = []
        self.long: list[tuple[str, int]] = []

    def _target(self, name: str) -> str | None:
        while name and name not in self.known:
            name = name.rpartition(".")[0]
        return name or None

    def _add(self, target: str, names: list[str], lineno: int) -> None:
        where = "function" if self.depth else "module"
        self.imports.append((target, names, where, lineno))

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for n in node.orelse:
                self.visit(n)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            if a.name.startswith("ftkit"):
                t = self._target(a.name)
                if t:
                    self._add(t, [], node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = resolve(self.mod, self.is_pkg, node)
        if not base.startswith("ftkit"):
            return
        names: list[str] = []
        for a in node.names:
            sub = f"{base}.{a.name}"
            if sub in self.known:  # `from ftkit.data import doctor` imports a module
                self._add(sub, [], node.lineno)
            else:
                names.append(a.name)
        t = self._target(base) if names else None
        if t:  # one statement, one edge, however many names it takes
            self._add(t, names, node.lineno)

    def _func(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > LONG:
            self.long.append((node.name, length))
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = _func
    visit_AsyncFunctionDef = _func


def scc(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with 2+ members (networkx): the import cycles."""
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from((a, b) for a, targets in edges.items() for b in targets)
    return sorted(sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1)


def main() -> int:
    mods = modules()
    known = set(mods)
    edges_all: dict[str, set[str]] = defaultdict(set)
    edges_mod: dict[str, set[str]] = defaultdict(set)
    n_module = n_function = 0
    upward: list[str] = []
    private: list[str] = []
    long_funcs: list[str] = []
    for mod, path in mods.items():
        v = Visitor(mod, path.name == "__init__.py", known)
        v.visit(ast.parse(path.read_text(), str(path)))
        long_funcs += [f"{mod}.{name} ({n} lines)" for name, n in v.long]
        for target, names, where, lineno in v.imports:
            if target == mod:
                continue
            if where == "module":
                n_module += 1
                edges_mod[mod].add(target)
            else:
                n_function += 1
            edges_all[mod].add(target)
            lo, lname = layer_of(mod)
            ho, hname = layer_of(target)
            if ho > lo:
                upward.append(f"{mod} ({lname}) -> {target} ({hname})  [{where}, line {lineno}]")
            for n in names:
                if n.startswith("_") and not n.startswith("__"):
                    private.append(f"{mod} imports {target}.{n}  [line {lineno}]")
    order = sorted(known)
    cyc_all = scc(order, edges_all)
    cyc_mod = scc(order, edges_mod)

    print(f"modules: {len(mods)}")
    print("layer order (low -> high): " + " < ".join(n for n, _ in LAYERS))
    print(f"internal import statements: {n_module + n_function} "
          f"(module level {n_module}, inside functions {n_function})")
    print(f"internal module edges: {sum(map(len, edges_all.values()))} "
          f"(module-level graph {sum(map(len, edges_mod.values()))})")
    print(f"import cycles (SCCs, module+function level): {len(cyc_all)}")
    for c in cyc_all:
        print("  " + " <-> ".join(c))
    print(f"import cycles (SCCs, module level only): {len(cyc_mod)}")
    for c in cyc_mod:
        print("  " + " <-> ".join(c))
    print(f"upward imports: {len(upward)}")
    for u in upward:
        print("  " + u)
    print(f"private cross-module imports: {len(private)}")
    for p in private:
        print("  " + p)
    print(f"functions longer than {LONG} lines: {len(long_funcs)}")
    for f in long_funcs:
        print("  " + f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
