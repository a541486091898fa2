"""The import graph of ``emulator/`` and ``kernels/`` keeps the layering of DESIGN.md.

Every module is parsed with ``ast`` and every ``import`` statement is an edge, including the ones inside functions
(a function-level import hides a dependency from the reader, not from the graph). The test fails on

* any import cycle;
* any import from a lower layer into a higher one: config/errors/_jit <- numerics <- engines <- collectives <- nki
  <- kernels <- testing/tour/cli (collectives sit over numerics and engines; the NKI front end over all three);
* any import of another package's private name: ``from ..numerics.mx_core import _bits`` or a private module
  ``..numerics._cast_kernels`` from outside ``numerics`` (a package's private names are visible to its own modules
  and its subpackages only);
* a library module (below the top layer) importing the root package ``emulator``: its names are lazy, so
  ``emu.matmul`` inside numerics would be an upward dependency the graph cannot see.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("emulator", "kernels")

#: (layer, module-name prefixes), lowest first. The longest matching prefix decides a module's layer.
LAYERS = (
    (0, ("emulator", "emulator.config", "emulator.errors", "emulator._jit")),
    (1, ("emulator.numerics",)),
    (2, ("emulator.engines",)),
    (3, ("emulator.collectives",)),
    (4, ("emulator.nki",)),
    (5, ("kernels",)),
    (6, ("emulator.testing", "emulator.report", "emulator.tour", "emulator.cli", "emulator.__main__",
         "emulator.explain",
         "emulator._selftest")),
)
TOP = max(layer for layer, _ in LAYERS)


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    name: str | None  # the imported name for ``from X import name`` (None for ``import X`` or a submodule)
    line: int


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for layer, prefixes in LAYERS:
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = layer, len(p)
    if best is None:
        raise AssertionError(f"module {module} is in no layer; add it to LAYERS in tests/test_architecture.py")
    return best


def package_of(module: str, modules: dict[str, bool]) -> str:
    """The package a module belongs to (a package's ``__init__`` belongs to the package itself)."""
    return module if modules.get(module) else module.rpartition(".")[0]


def collect(sources: dict[str, tuple[str, bool]]) -> tuple[dict[str, bool], list[Edge]]:
    """``sources``: module name -> (source text, is a package ``__init__``). Returns (is_package map, edges)."""
    modules = {name: ispkg for name, (_, ispkg) in sources.items()}
    edges = []
    for mod, (text, ispkg) in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in PACKAGES:
                        edges.append(Edge(mod, alias.name, None, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if ispkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] not in PACKAGES:
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        edges.append(Edge(mod, sub, None, node.lineno))
                    else:
                        edges.append(Edge(mod, target, alias.name, node.lineno))
    return modules, edges


def load_sources(root: Path = ROOT) -> dict[str, tuple[str, bool]]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            ispkg = parts[-1] == "__init__"
            if ispkg:
                parts = parts[:-1]
            out[".".join(parts)] = (path.read_text(encoding="utf-8"), ispkg)
    return out


def cycles(modules: dict[str, bool], edges: list[Edge]) -> list[list[str]]:
    """Strongly connected components with more than one module (or a module importing itself), Tarjan's algorithm."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for e in edges:
        if e.dst in modules:
            graph[e.src].add(e.dst)
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:  # recursion depth is bounded by the number of modules (~100)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _private(part: str) -> bool:
    return part.startswith("_") and not part.startswith("__")


def violations(sources: dict[str, tuple[str, bool]]) -> list[str]:
    """Every rule broken by the modules in ``sources``, one readable line each."""
    modules, edges = collect(sources)
    problems = [f"import cycle: {' -> '.join(c)}" for c in cycles(modules, edges)]
    for e in edges:
        where = f"{e.src} (line {e.line})"
        what = e.dst + (f".{e.name}" if e.name else "")
        if e.dst not in modules:
            problems.append(f"{where} imports {what}, which does not exist")
            continue
        if layer_of(e.dst) > layer_of(e.src):
            problems.append(f"{where} imports {what}: layer {layer_of(e.src)} must not import layer "
                            f"{layer_of(e.dst)} (config/errors/_jit < numerics < engines < collectives < nki < "
                            "kernels < testing/tour/cli)")
        if e.dst == "emulator" and e.name is None and layer_of(e.src) < layer_of("kernels"):
            problems.append(f"{where} imports the root package emulator: library code imports the module it uses")
        src_pkg, dst_pkg = package_of(e.src, modules), package_of(e.dst, modules)
        inside = src_pkg == dst_pkg or src_pkg.startswith(dst_pkg + ".")
        if not inside:
            rel = e.dst[len(dst_pkg) + 1:].split(".") if e.dst != dst_pkg else []
            private = [p for p in rel + ([e.name] if e.name else []) if _private(p)]
            if private:
                problems.append(f"{where} imports {what}: {private[0]} is private to {dst_pkg}; make it public or "
                                "move it")
    return problems


# ----------------------------------------------------------------------------------------------------------------

def test_the_checker_finds_what_it_should():
    """The rules fire on a made-up package: a cycle, an upward import, a private cross-package name."""
    fake = {
        "emulator": ("", True),
        "emulator.config": ("", False),
        "emulator.numerics": ("", True),
        "emulator.numerics.a": ("def f():\n    from . import b\n", False),
        "emulator.numerics.b": ("from .a import f\nfrom ..engines.tensor import g\n", False),
        "emulator.engines": ("", True),
        "emulator.engines.tensor": ("", False),
        "emulator.engines.memory": ("from ..numerics.a import _hidden\nfrom ..config import x\n", False),
    }
    found = violations(fake)
    assert any("cycle: emulator.numerics.a -> emulator.numerics.b" in p for p in found), found
    assert any("emulator.numerics.b (line 2) imports emulator.engines.tensor.g: layer 1" in p for p in found), found
    hidden = "memory (line 1) imports emulator.numerics.a._hidden: _hidden is private to emulator.numerics"
    assert any(hidden in p for p in found), found
    assert len(found) == 3, found  # the config import and the same-package imports are allowed


def test_the_graph_is_the_real_one():
    sources = load_sources()
    modules, edges = collect(sources)
    assert {"emulator.numerics.cast", "emulator.engines.matmul", "kernels.matmul"} <= set(modules)
    pairs = {(e.src, e.dst) for e in edges}
    assert ("emulator.numerics.cast", "emulator.numerics.formats") in pairs
    for m in modules:
        layer_of(m)  # every module has a layer


def test_import_graph_keeps_the_layers():
    problems = violations(load_sources())
    if problems:
        pytest.fail("the import graph breaks the layering:\n  " + "\n  ".join(problems))
