"""A fingerprint of the package code each job's output depends on, so that an edit reruns what it affects.

Snakemake reruns a job when its script changes, but the science lives in the ``lorp`` package, which it
does not track. Every rule with a script therefore gets a ``code`` param (:func:`job_code`, added to each
such rule by the Snakefile from Snakemake's own rule objects): a hash of the code its script calls, found by
following imports within ``lorp``:

- the script (the rule's ``script:``) and the ``lorp`` names it imports, anywhere in the script;
- an imported function: its own code, the functions and constants of its module it uses, and every
  ``lorp`` module it imports or uses by name (so ``stages.depth.make_plan`` takes in ``lorp.depth.methods``
  but not the other stage functions);
- an imported module: the whole module, and the ``lorp`` modules it imports, transitively;
- a module's import-time statements, except registrations: a top-level call that declares a named entry of a
  registry (``register(Method(name="lorp", ...))``) counts only for the jobs that select it by name
  (:func:`selected_names`: the job's ``method``, ``metric``, ``allocation`` or ``recovery`` wildcard, or a ``-``-separated
  part of it), for none by the dense model's jobs (rules ``<name>_dense``, which run no method, metric or
  recovery), and for every job of another rule that has none of those wildcards (tables and figures draw
  every method). So an edit of one method's plan function reruns that method's plans and what follows from
  them, nothing of another method's, and no evaluation of the dense model.

Code is hashed as its syntax tree without docstrings (``ast.dump`` without line numbers), so an edited
comment, docstring, blank line or formatting reruns nothing, and any change a Python interpreter would
execute differently reruns the rule. The harness every script runs in (:func:`lorp.workflow.jobs.job`,
which logs and records provenance) is left out: it shapes no result. A new Python version may dump the
same code differently, which then reruns every rule once.

Files outside the workflow that jobs read count by their bytes in the same way (:func:`file_digest`): a local
corpus through the name of its source's record (:func:`lorp.workflow.config.source_entry`), the zero-shot task
files, the task definitions shipped in ``lorp`` and LoRA's training file as the ``contents`` param of the jobs
that read them, each beside the files as ``ancient()`` inputs; so an edit reruns what reads them and a copy or
touch with the same bytes (the data synced again, the package reinstalled) reruns nothing.
"""

from __future__ import annotations

import ast
import copy
import functools
import hashlib
from pathlib import Path
from typing import Iterable, Mapping

ROOT = Path(__file__).resolve().parents[3]
"""The workflow's checkout: ``src/lorp`` lives under it."""

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
    registry's ``register(...)`` calls among them): part of whatever uses the module."""
    skip = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.AugAssign,
            ast.Import, ast.ImportFrom)
    return [n for n in tree.body if not isinstance(n, skip)
            and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]


def registration(tree: ast.Module, stmt: ast.stmt) -> str | None:
    """The name a top-level statement registers (a call with a ``name=`` keyword at any depth, a string or
    a module constant holding one), or None for any other statement."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return None
    constants = {t.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for t in node.targets if isinstance(t, ast.Name)}
    for node in ast.walk(stmt.value):
        if isinstance(node, ast.keyword) and node.arg == "name":
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
            if isinstance(node.value, ast.Name) and node.value.id in constants:
                return constants[node.value.id]
    return None


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


def closure(items: set[Item], root: Path = ROOT, selected: frozenset[str] | None = None) -> set[Item]:
    """Every definition the ``items`` reach, transitively within ``lorp``; with each module reached, the
    statements it runs on import (:func:`_effects`): its registrations (items ``(module, "@<name>")``) only
    where ``selected`` names them, or all where ``selected`` is None. A name a module re-exports is followed
    to its origin."""
    seen: set[Item] = set()
    stack = list(items)
    while stack:
        module, name = stack.pop()
        path = _module_file(module, root)
        if (module, name) in seen or path is None:
            continue
        tree = _tree(path)
        if name.startswith("@"):  # one registration, pushed by its module's import-time statements
            if selected is not None and name[1:] not in selected:
                continue
            seen.add((module, name))
            for stmt in _effects(tree):
                if registration(tree, stmt) == name[1:]:
                    stack += list(_uses(module, stmt, root))
            continue
        seen.add((module, name))
        if name == "*":
            stack += [(module, n) for n in _top_level(tree)] + [(module, "!")]
            continue
        if name == "!":  # the module's import-time statements
            for stmt in _effects(tree):
                reg = registration(tree, stmt)
                stack += [(module, f"@{reg}")] if reg is not None else list(_uses(module, stmt, root))
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


@functools.lru_cache(maxsize=None)
def _source(item: Item, root: Path) -> str:
    module, name = item
    tree = _tree(_module_file(module, root))
    if name == "!":
        return "\n".join(normalised(stmt) for stmt in _effects(tree) if registration(tree, stmt) is None)
    if name.startswith("@"):
        return "\n".join(normalised(stmt) for stmt in _effects(tree) if registration(tree, stmt) == name[1:])
    if name == "*":
        return ""  # a whole module: its definitions are items of their own
    defs = _top_level(tree)
    return normalised(defs[name]) if name in defs else ""


SELECTING_WILDCARDS = ("method", "metric", "allocation", "recovery")
"""The wildcards that select registrations by name (:func:`selected_names`)."""


DENSE_RULE_SUFFIX = "_dense"
"""The dense model's rules (``evaluate_dense``, ``evaluate_tasks_dense``): their jobs run no registered method,
though their script, shared with the pruned model's rules, reaches the registries."""


def selected_names(wildcards: Mapping[str, str], rule: str | None = None) -> frozenset[str] | None:
    """The registrations a job reaches: the values of its ``method``, ``metric``, ``allocation`` and
    ``recovery`` wildcards and each ``-``-separated part of them (``lorp-k3`` selects ``lorp``, ``wanda-mrp`` selects
    ``wanda`` and ``mrp``); none for a job of a dense model's rule (:data:`DENSE_RULE_SUFFIX`); None (every
    registration) for another job with none of these wildcards."""
    values = [str(wildcards[k]) for k in SELECTING_WILDCARDS if k in wildcards]
    if not values:
        return frozenset() if rule is not None and rule.endswith(DENSE_RULE_SUFFIX) else None
    return frozenset(v for value in values for v in (value, *value.split("-")))


@functools.lru_cache(maxsize=None)
def script_items(script: Path, root: Path = ROOT, selected: frozenset[str] | None = None) -> frozenset[Item]:
    """The ``lorp`` definitions a script's imports reach (:func:`closure`), the harness left out."""
    start: set[Item] = set()
    for target, attr in _imports("__script__", _tree(Path(script)), root).values():
        if _in_package(target) and (target, attr) not in HARNESS:
            start.add((target, attr or "*"))
    return frozenset(closure(start, root, selected))


def job_code(script: str | Path, wildcards: Mapping[str, str] | None = None, root: Path = ROOT,
             rule: str | None = None) -> str:
    """The fingerprint of the ``lorp`` code a job of ``rule`` (its script ``script``) depends on (16 hex
    digits): the script's closure with the registrations its ``wildcards`` and rule select
    (:func:`selected_names`)."""
    return _code(Path(script).resolve(), root, selected_names(wildcards or {}, rule))


@functools.lru_cache(maxsize=None)
def _code(script: Path, root: Path, selected: frozenset[str] | None) -> str:
    digest = hashlib.sha256()
    for item in sorted(script_items(script, root, selected)):
        digest.update(f"{item[0]}:{item[1]}\n{_source(item, root)}\n".encode())
    return digest.hexdigest()[:16]


def definitions(script: str | Path, wildcards: Mapping[str, str] | None = None, root: Path = ROOT,
                rule: str | None = None) -> list[str]:
    """The ``lorp`` definitions (``module:name``; ``module:@name`` for a registration) a job's fingerprint
    covers."""
    items = script_items(Path(script).resolve(), root, selected_names(wildcards or {}, rule))
    return sorted(f"{m}:{n}" for m, n in items if n not in ("*", "!"))


def file_digest(path: str | Path) -> str:
    """The sha256 of a file's bytes, read once per process for a given size and modification time (raises
    FileNotFoundError for a missing file)."""
    stat = Path(path).stat()
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def file_digests(paths: Iterable[str | Path]) -> dict[str, str]:
    """:func:`file_digest` of each file, by the path as given (``"missing"`` for a file that does not exist,
    which Snakemake then reports as a missing input)."""
    out = {}
    for path in paths:
        try:
            out[str(path)] = file_digest(path)
        except FileNotFoundError:
            out[str(path)] = "missing"
    return out


@functools.lru_cache(maxsize=None)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    from .provenance import sha256_file

    return sha256_file(path)


def clear_caches() -> None:
    """Forget every parsed file (after an edit of the package in the same process)."""
    for cached in (_code, script_items, _source, _tree, _module_file, _file_sha256):
        cached.cache_clear()
