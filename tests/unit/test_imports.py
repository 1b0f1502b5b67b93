"""No import circles among the modules of nerdpy/ and compose/.

The rule: the graph of imports between our modules has no cycle, counting module-level imports
AND the lazy ones inside functions. Lazy imports keep start-up cheap; they are not a way
around layering (a lower module reaching up to a higher one, e.g. the compose model importing
the loader, or a command module importing the CLI root). Not counted: imports under
`if TYPE_CHECKING:` and modules loaded by name through importlib (the CLI's command table).
Imports are read with ast, so nothing is imported to check them.
"""
from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGES = ("nerdpy", "compose")


def _modules() -> dict[str, str]:
    out = {}
    for top in PACKAGES:
        for d, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [x for x in dirs if x != "__pycache__"]
            for f in files:
                if f.endswith(".py"):
                    name = os.path.relpath(os.path.join(d, f), ROOT)[:-3].replace(os.sep, ".")
                    out[name.removesuffix(".__init__")] = os.path.join(d, f)
    return out


def _imports(name: str, path: str, modules: dict[str, str]) -> dict[str, int]:
    """Our modules that `name` imports -> the line of (the first) import."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found: dict[str, int] = {}

    def add(target: str, line: int) -> None:
        if target != name:
            found.setdefault(target, line)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for n in child.orelse:
                    visit(n)
                continue
            if isinstance(child, ast.Import):
                for a in child.names:
                    if a.name in modules:
                        add(a.name, child.lineno)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")[:len(package.split(".")) - (child.level - 1)]
                    base = ".".join(parts + ([base] if base else []))
                for a in child.names:
                    full = f"{base}.{a.name}"
                    if full in modules:
                        add(full, child.lineno)
                    elif base in modules:
                        add(base, child.lineno)
            visit(child)

    visit(tree)
    return found


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_cycles():
    modules = _modules()
    assert "nerdpy.cli" in modules and "compose.model" in modules
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    cycles = _cycles(graph)
    detail = []
    for comp in cycles:
        members = set(comp)
        detail.append("; ".join(f"{m}:{line} -> {t}" for m in comp for t, line in sorted(graph[m].items())
                                if t in members))
    assert not cycles, "import circles (module:line -> imported module):\n" + "\n".join(detail)


def test_compose_model_imports_nothing_above_it():
    modules = _modules()
    got = set(_imports("compose.model", modules["compose.model"], modules))
    assert got <= {"compose.errors", "compose.units"}, got


def test_the_checker_sees_lazy_imports(tmp_path):
    """The graph counts an import inside a function (so a lazy upward import is a circle)."""
    src = tmp_path / "m.py"
    src.write_text("import os\n\ndef f():\n    from compose.loader import load_project\n")
    modules = {"compose.loader": "", "compose.model": str(src)}
    assert _imports("compose.model", str(src), modules) == {"compose.loader": 4}
    assert _cycles({"a": {"b": 1}, "b": {"a": 1}, "c": {"a": 1}}) == [["a", "b"]]


def test_test_modules_have_unique_names():
    """`pytest tests` imports unit and integration modules by basename (no packages): two of the
    same name stop the whole run at collection."""
    tests = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    seen: dict[str, str] = {}
    for d in ("unit", "integration"):
        for name in os.listdir(os.path.join(tests, d)):
            if name.startswith("test_") and name.endswith(".py"):
                assert name not in seen, f"tests/{seen[name]}/{name} and tests/{d}/{name}: rename one"
                seen[name] = d
