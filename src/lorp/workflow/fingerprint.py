"""A fingerprint of the package code each rule's output depends on, so that an edit reruns what it affects.

Snakemake reruns a job when its script changes, but the science lives in the ``lorp`` package, which it
does not track. Each rule's params therefore carry :func:`rule_code`: a hash of the code its script calls,
found by following imports within ``lorp``:

- the script (``scripts/<name>.py``, named in ``rules/*.smk``) and the ``lorp`` names it imports;
- an imported function: its own code, the functions and constants of its module it uses, and every
  ``lorp`` module it imports or uses by name (so ``pipeline.make_plan`` takes in ``lorp.depth.methods``
  but not the other stage functions of ``pipeline.py``);
- an imported module: the whole module, and the ``lorp`` modules it imports, transitively.

Code is hashed as its syntax tree without docstrings (``ast.dump`` without line numbers), so an edited
comment, docstring, blank line or formatting reruns nothing, and any change a Python interpreter would
execute differently reruns the rule. The harness every script runs in (:func:`lorp.workflow.jobs.job`,
which logs and records provenance) is left out: it shapes no result. A new Python version may dump the
same code differently, which then reruns every rule once.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
"""The workflow's checkout: ``Snakefile``, ``rules/``, ``scripts/`` and ``src/lorp``."""

PACKAGE = "lorp"
HARNESS = {("lorp.workflow.jobs", "job")}
"""Imports that run the job rather than compute its outputs, left out of every fingerprint."""


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def normalised(node: ast.AST) -> str:
    """``node``'s syntax tree without docstrings or positions: what an edit must change to count."""
    return ast.dump(_strip_docstrings(copy.deepcopy(node)), annotate_fields=True, include_attributes=False)


@functools.lru_cache(maxsize=None)
def _module_file(module: str, root: Path) -> Path | None:
    base = root / "src" / Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.lru_cache(maxsize=None)
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _resolve(module: str, level: int, name: str | None, is_package: bool) -> str:
    """The absolute module of ``from <level dots><name> import ...`` inside ``module``."""
    if level == 0:
        return name or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _imports(module: str, nodes: list[ast.stmt] | ast.AST, root: Path) -> dict[str, tuple[str, str | None]]:
    """Names bound by the import statements in ``nodes`` -> (module, attribute or None for a module)."""
    path = _module_file(module, root)
    is_package = path is not None and path.name == "__init__.py"
    out: dict[str, tuple[str, str | None]] = {}
    walker = nodes if isinstance(nodes, list) else list(ast.walk(nodes))
    for node in walker:
        if isinstance(node, ast.Import):
            for alias in node.names:
                out[(alias.asname or alias.name).split(".")[0]] = (alias.name if alias.asname else
                                                                   alias.name.split(".")[0], None)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node.level, node.module, is_package)
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                target = (sub, None) if _module_file(sub, root) else (source, alias.name)
                out[alias.asname or alias.name] = target
    return out


def _in_package(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def _top_level(tree: ast.Module) -> dict[str, ast.stmt]:
    """A module's top-level functions, classes and assignments by the names they bind."""
    out: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        out[n.id] = node
    return out


def _effects(tree: ast.Module) -> list[ast.stmt]:
    """The top-level statements a module runs on import besides definitions and imports (the method
    registry's ``register(...)`` calls): part of whatever uses the module."""
    skip = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.AugAssign,
            ast.Import, ast.ImportFrom)
    return [n for n in tree.body if not isinstance(n, skip)
            and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]


Item = tuple[str, str]
"""A definition: (module, name), or (module, "*") for a whole module."""


def _uses(module: str, node: ast.AST, root: Path) -> set[Item]:
    """The definitions ``node`` (in ``module``) uses: its module's own by name, another ``lorp`` module's
    by ``from .. import name`` or by ``module.name``, or a whole module used bare."""
    tree = _tree(_module_file(module, root))
    defs = _top_level(tree)
    imported = _imports(module, [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], root)
    imported.update(_imports(module, node, root) if not isinstance(node, ast.Module) else {})
    attribute_of: dict[int, str] = {id(n.value): n.attr for n in ast.walk(node)
                                    if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    out: set[Item] = set()
    for n in ast.walk(node):
        if not isinstance(n, ast.Name):
            continue
        if n.id in imported:
            target, attr = imported[n.id]
            if not _in_package(target):
                continue
            if attr is not None:
                out.add((target, attr))
            elif id(n) in attribute_of:
                out.add((target, attribute_of[id(n)]))
            else:
                out.add((target, "*"))
        elif n.id in defs:
            out.add((module, n.id))
    return out


def closure(items: set[Item], root: Path = ROOT) -> set[Item]:
    """Every definition the ``items`` reach, transitively within ``lorp``; with each module reached, the
    statements it runs on import (:func:`_effects`). A name a module re-exports is followed to its origin."""
    seen: set[Item] = set()
    stack = list(items)
    while stack:
        module, name = stack.pop()
        path = _module_file(module, root)
        if (module, name) in seen or path is None:
            continue
        seen.add((module, name))
        tree = _tree(path)
        if name == "*":
            stack += [(module, n) for n in _top_level(tree)] + [(module, "!")]
            continue
        if name == "!":  # the module's import-time statements
            for stmt in _effects(tree):
                stack += list(_uses(module, stmt, root))
            continue
        stack.append((module, "!"))
        defs = _top_level(tree)
        if name in defs:
            stack += list(_uses(module, defs[name], root))
            continue
        imported = _imports(module, [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], root)
        if name in imported and _in_package(imported[name][0]):  # re-exported from another module
            target, attr = imported[name]
            stack.append((target, attr or "*"))
        elif _module_file(f"{module}.{name}", root):  # a submodule reached as an attribute of its package
            stack.append((f"{module}.{name}", "*"))
    return seen


def _source(item: Item, root: Path) -> str:
    module, name = item
    tree = _tree(_module_file(module, root))
    if name == "!":
        return "\n".join(normalised(stmt) for stmt in _effects(tree))
    if name == "*":
        return ""  # a whole module: its definitions are items of their own
    defs = _top_level(tree)
    return normalised(defs[name]) if name in defs else ""


@functools.lru_cache(maxsize=None)
def rule_scripts(root: Path = ROOT) -> dict[str, Path]:
    """Each rule's script, from ``rules/*.smk`` (``use rule A as B`` inherits A's)."""
    scripts: dict[str, Path] = {}
    aliases: dict[str, str] = {}
    for smk in sorted((root / "rules").glob("*.smk")):
        text = smk.read_text(encoding="utf-8")
        blocks = re.split(r"^(?=rule \w+:|use rule \w+ as \w+ with:)", text, flags=re.M)
        for block in blocks:
            m = re.match(r"rule (\w+):", block)
            if m:
                s = re.search(r"^\s+script:\s*\n\s+\"([^\"]+)\"", block, flags=re.M)
                if s:
                    scripts[m.group(1)] = (smk.parent / s.group(1)).resolve()
                continue
            m = re.match(r"use rule (\w+) as (\w+) with:", block)
            if m:
                aliases[m.group(2)] = m.group(1)
    for alias, base in aliases.items():
        if base in scripts:
            scripts[alias] = scripts[base]
    return scripts


@functools.lru_cache(maxsize=None)
def script_items(script: Path, root: Path = ROOT) -> frozenset[Item]:
    """The ``lorp`` definitions a script's imports reach (:func:`closure`), the harness left out."""
    start: set[Item] = set()
    for target, attr in _imports("__script__", _tree(script), root).values():
        if _in_package(target) and (target, attr) not in HARNESS:
            start.add((target, attr or "*"))
    return frozenset(closure(start, root))


@functools.lru_cache(maxsize=None)
def rule_code(rule: str, root: Path = ROOT) -> str:
    """The fingerprint of the ``lorp`` code ``rule``'s outputs depend on (16 hex digits; "" for a rule
    without a script)."""
    script = rule_scripts(root).get(rule)
    if script is None:
        return ""
    digest = hashlib.sha256()
    for item in sorted(script_items(script, root)):
        digest.update(f"{item[0]}:{item[1]}\n{_source(item, root)}\n".encode())
    return digest.hexdigest()[:16]


def rule_definitions(rule: str, root: Path = ROOT) -> list[str]:
    """The ``lorp`` definitions (``module:name``) ``rule``'s fingerprint covers."""
    script = rule_scripts(root).get(rule)
    if script is None:
        return []
    return sorted(f"{m}:{n}" for m, n in script_items(script, root) if n not in ("*", "!"))
