"""The rtgan package has no import cycles (issue 14).

Every module's imports are read from its source (``ast``), including imports inside functions,
which would otherwise hide a cycle until the function runs. The edges are "module A names
module B in an import statement", between rtgan's own modules; a package's ``__init__`` counts
as the package. Importing a submodule also runs its parent packages' ``__init__``, but that is
not an edge here (it is not a dependency the importing code chose). Dynamic imports
(``importlib.import_module``, as the model registry's discovery of ``rtgan/models/`` uses) are
not seen.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rtgan

ROOT = Path(rtgan.__file__).resolve().parent


def _modules() -> dict[str, tuple[Path, bool]]:
    """``{dotted name: (file, is_package)}`` of every module of rtgan."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = ("rtgan", *path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The rtgan module that ``name`` (a module, or a name inside one) lives in."""
    while name not in MODULES:
        if "." not in name:
            return None
        name = name.rsplit(".", 1)[0]
    return name


def _imports(module: str) -> set[str]:
    """The rtgan modules that ``module`` imports anywhere in its source."""
    path, is_package = MODULES[module]
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(_owner(a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # "from PKG import NAME": NAME is a submodule of PKG, or a name defined in PKG
            found.update(_owner(f"{target}.{a.name}") for a in node.names)
    found.discard(None)
    found.discard(module)
    return found  # type: ignore[return-value]


GRAPH = {m: _imports(m) for m in MODULES}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read_correctly():
    """Known edges are found, function-level imports included (or the acyclicity test proves nothing)."""
    assert "rtgan.checkpoint" in GRAPH["rtgan.models.registry"]            # module level, relative
    assert "rtgan.models.registry" in GRAPH["rtgan.models.sr_hifigan"]     # module level, relative
    assert "rtgan.models.layers" in GRAPH["rtgan.models.sr_hifigan"]       # a package
    assert "rtgan.data.corpus" in GRAPH["rtgan.cli.corpus"]                # inside a function
    assert "rtgan.training.loop" in GRAPH["rtgan.cli.training"]            # inside a function
    assert "rtgan.data.midi.tools" in GRAPH["rtgan.data.corpus"]           # "from ..midi.tools import"
    assert "rtgan" in GRAPH["rtgan.cli.main"]                              # "from .. import __version__"
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    detail = "\n".join(f"{' <-> '.join(c)}: " + "; ".join(f"{m} -> {sorted(GRAPH[m] & set(c))}" for m in c)
                       for c in cycles)
    assert not cycles, f"import cycles among rtgan modules:\n{detail}"


@pytest.mark.parametrize("lower,upper", [
    ("rtgan.checkpoint", "rtgan.models"),  # the registry loads checkpoints; checkpoint knows no models
    ("rtgan.data.midi", "rtgan.data.corpus"),  # the corpus builds the midi source; not the other way
    ("rtgan.data.common", "rtgan.data.corpus"),
    ("rtgan.data.common", "rtgan.data.midi"),
])
def test_lower_modules_do_not_import_upper_ones(lower, upper):
    """The two cycles of issue 14 stay broken: the dependency goes one way."""
    def inside(name: str, pkg: str) -> bool:
        return name == pkg or name.startswith(pkg + ".")

    offenders = {m: sorted(d for d in deps if inside(d, upper))
                 for m, deps in GRAPH.items() if inside(m, lower)}
    assert not {m: d for m, d in offenders.items() if d}, offenders
