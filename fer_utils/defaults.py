"""The library's defaults and named choices, read from its source without importing it.

The front ends show and use the defaults the library declares: a dataclass field's
(`Smoothing.alpha`), a function parameter's (`evaluate.split`), a module constant
(`PROFILES`, whose keys are the choices). Most of the modules that declare them import
TensorFlow, which takes seconds to start, so `fer-kit <command> --help` reads the literal
values from their source instead; tests/test_cli.py checks them against the imported ones.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

__all__ = ["default", "choices"]

_PACKAGE = Path(__file__).parent


@cache
def _tree(module: str) -> ast.Module:
    return ast.parse((_PACKAGE / f"{module}.py").read_text(encoding="utf-8"))


def _top_level(module: str, name: str) -> ast.AST:
    """The definition of `name` at the top of `module`: its value, class or function."""
    for node in _tree(module).body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name == name:
            return node
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == name:
            return node.value
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name
                                                for t in node.targets):
            return node.value
    raise LookupError(f"fer_utils.{module} defines no {name} at its top level")


def _member_default(owner: ast.AST, member: str) -> ast.AST:
    """The default of a dataclass field or of a function parameter."""
    if isinstance(owner, ast.ClassDef):
        for node in owner.body:
            if isinstance(node, ast.AnnAssign) and node.target.id == member and node.value:
                return node.value
    elif isinstance(owner, ast.FunctionDef):
        args = owner.args
        positional = args.posonlyargs + args.args
        pairs = [*zip(positional[len(positional) - len(args.defaults):], args.defaults,
                      strict=True),
                 *zip(args.kwonlyargs, args.kw_defaults, strict=True)]
        for arg, value in pairs:
            if arg.arg == member and value is not None:
                return value
    raise LookupError(f"{getattr(owner, 'name', owner)} has no default for {member}")


def default(module: str, name: str) -> object:
    """The literal default `name` declares in fer_utils.<module>: "CONSTANT",
    "Class.field" or "function.parameter"."""
    owner, _, member = name.partition(".")
    node = _top_level(module, owner)
    return ast.literal_eval(_member_default(node, member) if member else node)


def choices(module: str, constant: str) -> tuple:
    """The names a constant of fer_utils.<module> offers: a dict's keys or a tuple's items."""
    node = _top_level(module, constant)
    if isinstance(node, ast.Dict):
        return tuple(ast.literal_eval(key) for key in node.keys)
    return tuple(ast.literal_eval(node))
