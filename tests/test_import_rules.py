"""The layers import only downwards, families stay apart, and no modules import each other.

The rules (CONTRIBUTING.md, "Architecture"), from the bottom layer up:

- ``arenagym.envs.core`` imports nothing else of arenagym; a family ``arenagym.envs.<family>``
  imports only itself and ``envs.core``; ``arenagym.envs`` (which registers every family) imports
  only ``arenagym.envs.*``.
- ``arenagym.agents`` may import ``envs``; ``arenagym.trainers`` may import ``envs`` and
  ``agents``; the benchmark harness ``arenagym.benchmarks`` may import ``envs`` and ``agents``.
- Only the command module (the root package ``arenagym``) imports ``arenagym.benchmarks`` from
  outside it; the scripts in ``benchmarks/experiments`` and ``benchmarks/perf`` may import any
  layer, and nothing in the package imports them.
- No import cycles between modules, counting imports inside functions too: a lazy import still
  ties the two modules together.

Every ``import`` / ``from ... import`` statement of every module is read from its source (the AST,
so the rules hold for imports that only run on some paths as well); imports of other packages are
ignored.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Source folder -> the package it is imported as (setup.cfg's package_dir).
FOLDERS = {
    "arenagym": "arenagym",
    "envs": "arenagym.envs",
    "agents": "arenagym.agents",
    "trainers": "arenagym.trainers",
    "benchmarks": "arenagym.benchmarks",
}
#: Folders of files that are data (sandboxed repositories of SWE tasks), not package modules.
DATA_FOLDERS = ("envs/swe/data",)
SCRIPTS = ("arenagym.benchmarks.experiments", "arenagym.benchmarks.perf")


def discover_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every arenagym module name mapped to its source file."""
    modules: dict[str, Path] = {}
    for folder, package in FOLDERS.items():
        base = root / folder
        if not (base / "__init__.py").exists():
            continue
        for path in sorted(base.rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith(DATA_FOLDERS):
                continue
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _owner(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module ``name`` refers to: itself, or the closest enclosing module (``pkg.mod.attr``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The arenagym modules that ``module`` imports anywhere in its source."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            # ``from pkg import submodule`` depends on the submodule (its package's ``__init__``
            # runs first, as for ``import pkg.submodule``: a parent is not counted as a
            # dependency); ``from mod import name`` depends on the module
            names = [f"{source}.{alias.name}" for alias in node.names]
            submodules = [name for name in names if name in modules]
            names = submodules if len(submodules) == len(names) else [source, *submodules]
        else:
            continue
        for name in names:
            if name == "arenagym" or name.startswith("arenagym."):
                owner = _owner(name, modules)
                if owner and owner != module:
                    found.add(owner)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Every arenagym module mapped to the arenagym modules it imports."""
    modules = discover_modules(root)
    return {module: imports_of(module, path, modules) for module, path in modules.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    layer = parts[1] if len(parts) > 1 else "root"
    return layer if layer in ("envs", "agents", "trainers", "benchmarks") else "root"


def rule_violations(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """Each import that breaks a layer rule, as ``"importer -> imported: why"``."""
    allowed = {
        "envs": {"envs"},
        "agents": {"envs", "agents"},
        "trainers": {"envs", "agents", "trainers"},
        "benchmarks": {"envs", "agents", "benchmarks"},
    }
    found = []
    for importer, targets in graph.items():
        script = importer.startswith(SCRIPTS)
        for target in targets:
            why = None
            layer, target_layer = _layer(importer), _layer(target)
            if target.startswith(SCRIPTS) and not script:
                why = "scripts under benchmarks/experiments and benchmarks/perf are never imported"
            elif script or layer == "root":
                continue
            elif target_layer not in allowed[layer]:
                why = f"{layer} may import only {', '.join(sorted(allowed[layer]))}"
            elif layer == "envs" and importer.count(".") >= 2:
                family, target_family = importer.split(".")[2], target.split(".")[2:3]
                if family == "core" and target_family != ["core"]:
                    why = "envs.core imports only envs.core"
                elif target_family and target_family[0] not in (family, "core"):
                    why = "a family imports only itself and envs.core"
            if why:
                found.append(f"{importer} -> {target}: {why}")
    return sorted(found)


def import_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_the_graph_covers_every_package(graph: dict[str, set[str]]) -> None:
    for package in ("arenagym.envs.core.text_env", "arenagym.agents.specs", "arenagym.trainers"):
        assert package in graph
    assert graph["arenagym.envs.math.env"] >= {"arenagym.envs.core.text_env"}


def test_layers_import_only_downwards(graph: dict[str, set[str]]) -> None:
    assert rule_violations(graph) == []


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    assert import_cycles(graph) == []


def test_the_checks_catch_what_they_forbid() -> None:
    bad = {
        "arenagym.envs.math.env": {"arenagym.envs.swe.tools", "arenagym.agents.specs"},
        "arenagym.envs.core.spaces": {"arenagym.envs.math.env"},
        "arenagym.agents.specs": {"arenagym.trainers.trainer"},
        "arenagym.trainers.trainer": {"arenagym.benchmarks.runner", "arenagym.agents.specs"},
        "arenagym.benchmarks.runner": {"arenagym.benchmarks.experiments.common"},
        "arenagym.benchmarks.experiments.common": {"arenagym.trainers.trainer"},
        "arenagym.cli": {"arenagym.benchmarks.runner"},
    }
    assert rule_violations(bad) == [
        "arenagym.agents.specs -> arenagym.trainers.trainer: agents may import only agents, envs",
        "arenagym.benchmarks.runner -> arenagym.benchmarks.experiments.common: scripts under "
        "benchmarks/experiments and benchmarks/perf are never imported",
        "arenagym.envs.core.spaces -> arenagym.envs.math.env: envs.core imports only envs.core",
        "arenagym.envs.math.env -> arenagym.agents.specs: envs may import only envs",
        "arenagym.envs.math.env -> arenagym.envs.swe.tools: a family imports only itself and "
        "envs.core",
        "arenagym.trainers.trainer -> arenagym.benchmarks.runner: trainers may import only "
        "agents, envs, trainers",
    ]
    assert import_cycles(bad) == [
        [
            "arenagym.agents.specs",
            "arenagym.benchmarks.experiments.common",
            "arenagym.benchmarks.runner",
            "arenagym.trainers.trainer",
        ]
    ]


def test_imports_are_read_from_every_statement_form(tmp_path: Path) -> None:
    package = tmp_path / "envs"
    (package / "demo").mkdir(parents=True)
    (package / "core").mkdir()
    for folder in (package, package / "demo", package / "core"):
        (folder / "__init__.py").write_text("")
    (package / "core" / "spaces.py").write_text("X = 1\n")
    (package / "demo" / "env.py").write_text(
        "from ..core import spaces\n"
        "def later():\n"
        "    from arenagym.agents.specs import load_agent\n"
        "    import arenagym.envs.demo.rules\n"
    )
    (package / "demo" / "rules.py").write_text("from . import env\n")
    (package / "demo" / "names.py").write_text("from arenagym.envs.demo import env, VERSION\n")
    graph = import_graph(tmp_path)
    assert graph["arenagym.envs.demo.env"] == {
        "arenagym.envs.core.spaces",
        "arenagym.envs.demo.rules",
    }  # arenagym.agents is not in this tree: not a module, so no edge
    assert graph["arenagym.envs.demo.rules"] == {"arenagym.envs.demo.env"}
    # a name that is not a submodule is read from the package: that is a dependency on it
    assert graph["arenagym.envs.demo.names"] == {"arenagym.envs.demo", "arenagym.envs.demo.env"}
    assert import_cycles(graph) == [["arenagym.envs.demo.env", "arenagym.envs.demo.rules"]]
