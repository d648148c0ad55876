"""The package's layers: every module has one, and imports only point down or sideways."""

import ast
import importlib
import re
from pathlib import Path

import pytest

import fer_utils

PACKAGE = Path(fer_utils.__file__).parent


def _imports(path: Path) -> set[str]:
    """fer_utils modules a source file imports, at any depth (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fer_utils."):
            found.add(node.module.split(".")[1])
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module name -> the package modules it imports."""
    return {p.stem: _imports(p) - {p.stem} for p in package.glob("*.py") if p.stem != "__init__"}


def layer_of() -> dict[str, int]:
    return {m: i for i, (_, modules) in enumerate(fer_utils.LAYERS) for m in modules}


def test_every_module_has_a_layer():
    assert set(import_graph()) == set(layer_of())


def test_imports_point_down_or_sideways():
    layer = layer_of()
    upward = [(m, d) for m, deps in import_graph().items() for d in deps if layer[d] > layer[m]]
    assert not upward, f"upward imports (module, imported): {upward}"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in the graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycles():
    assert _cycle(import_graph()) is None, f"import cycle: {' -> '.join(_cycle(import_graph()))}"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(fer_utils.__all__))
def test_the_public_api_resolves_to_its_modules_object(name):
    module = importlib.import_module(f"fer_utils.{fer_utils._API[name]}")
    assert getattr(fer_utils, name) is getattr(module, name)
    assert not hasattr(module, "__path__") and name not in layer_of()  # no name is a module


def _public_definitions(path: Path) -> set[str]:
    """Top-level functions, classes and constants of a module whose names do not start with _."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_") and n != "T"}


@pytest.mark.parametrize("module", sorted(layer_of()))
def test_every_module_lists_its_public_names_in_all(module):
    path = PACKAGE / f"{module}.py"
    listed = ast.literal_eval(next(
        node.value for node in ast.parse(path.read_text()).body if isinstance(node, ast.Assign)
        and any(getattr(t, "id", None) == "__all__" for t in node.targets)))
    assert sorted(listed) == sorted(set(listed)), f"{module}.__all__ names a name twice"
    assert set(listed) == _public_definitions(path)


def test_the_readme_shows_the_layers_as_they_are():
    readme = (PACKAGE.parent / "README.md").read_text()
    layout = readme[readme.index("in layers ("):readme.index("The public API")]
    names = [name for name, _ in fer_utils.LAYERS]
    parts = re.split(rf"\n\s+({'|'.join(names)})\s{{2,}}", layout)[1:]
    shown = [(name, tuple(re.findall(r"\w+", modules))) for name, modules in
             zip(parts[::2], parts[1::2], strict=True)]
    assert shown == list(fer_utils.LAYERS)
