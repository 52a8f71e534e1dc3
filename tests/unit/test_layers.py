"""Imports go down the layers of DESIGN.md, and roles never import other roles.

The package is read with ``ast`` (nothing is imported), every ``import`` counts, including those inside
functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Top to bottom; a module may import from its own layer or any layer below it. Keys are module names or
# package prefixes; the longest matching key decides.
LAYERS: list[tuple[str, ...]] = [
    ("llmrack.cli", "llmrack.cli_common", "llmrack.cli_data", "llmrack.cli_migrate", "llmrack.cli_plan",
     "llmrack.cli_progress", "llmrack.cli_rollout", "llmrack.cli_secrets"),
    # services run from the CLI or the deploys
    ("llmrack.verify", "llmrack.stack.smoke", "llmrack.stack.smoke_http", "llmrack.stack.smoke_stream", "llmrack.bench",
     "llmrack.backup", "llmrack.rebuild", "llmrack.rotate", "llmrack.rotate_host",
     "llmrack.migrate", "llmrack.migrate_run", "llmrack.rollout", "llmrack.burnin", "llmrack.advisor", "llmrack.export",
     "llmrack.sandbox", "llmrack.sandbox_image", "llmrack.sandbox_state", "llmrack.validate"),
    # what a host runs and how it gets there
    ("llmrack.stack", "llmrack.monitoring", "llmrack.bundle", "llmrack.bundle_apt", "llmrack.images",
     "llmrack.tinymodel"),
    # how roles change a host
    ("llmrack.ops", "llmrack.reboot", "llmrack.progress", "llmrack.ssh_latency", "llmrack.ssh_stream"),
    ("llmrack.facts",),
    # secrets on the admin machine; paths, ports, addresses, the bundle's manifest
    ("llmrack.secrets", "llmrack.retired_keys", "llmrack.tls", "llmrack.httpclient", "llmrack.layout",
     "llmrack.manifest", "llmrack.exposure", "llmrack.checkresult"),
    # typed data and the sizing math
    ("llmrack.config", "llmrack.cluster", "llmrack.settings", "llmrack.planner", "llmrack.catalogue", "llmrack.models",
     "llmrack.docker_daemon", "llmrack.deploy_input", "llmrack.yamlfile"),
    ("llmrack.errors", "llmrack"),
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}

# Roles sit between the services and the stack: they may not import the CLI or the services that run them.
ROLE_FORBIDDEN = ("llmrack.cli", "llmrack.verify", "llmrack.stack.smoke", "llmrack.rebuild", "llmrack.sandbox")

# Known exceptions, each with its reason (keep this short).
ALLOWED: set[tuple[str, str]] = {
    # models reads the tiny model's RECIPE constant, which stays in tinymodel.py (its builder, in the stack layer)
    ("llmrack.models", "llmrack.tinymodel"),
}

# The CLI may import the library inside its commands, for a fast ``llmrack --help``. Everywhere else project
# imports go at the top, where a reader (and this test) sees every dependency of the module at once; an import
# that truly must stay inside a function says why on its line with a ``# lazy: <reason>`` comment.
LAZY_MODULES = ("llmrack.cli", "llmrack.cli_")
LAZY_REASON = "# lazy:"


def _lazy_allowed(module: str) -> bool:
    return module == LAZY_MODULES[0] or module.startswith(LAZY_MODULES[1])


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    out = {}
    for pkg in ("llmrack", "roles"):
        for path in (ROOT / pkg).rglob("*.py"):
            if "contexts" in path.parts:  # files copied into images, not part of the package
                continue
            out[_module_name(path)] = path
    return out


SOURCES = _sources()


def _imports(module: str, path: Path) -> set[str]:
    """Project modules ``module`` imports (``from pkg import name`` counts as ``pkg.name`` if that is a module)."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in SOURCES else target)
    return {m for m in found if m.split(".")[0] in ("llmrack", "roles") and m != module}


IMPORTS = {m: _imports(m, p) for m, p in SOURCES.items()}


def _unit(module: str) -> str:
    """The layer key a module belongs to (the longest matching name or package prefix)."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in RANK:
            return key
    raise AssertionError(f"{module} is in no layer of tests/unit/test_layers.py: add it to LAYERS")


def test_every_module_has_a_layer():
    for module in SOURCES:
        if module.startswith("llmrack"):
            _unit(module)


def test_roles_import_no_roles():
    bad = sorted(
        (m, t) for m, targets in IMPORTS.items() if m.startswith("roles.")
        for t in targets if t.startswith("roles") and (m, t) not in ALLOWED
    )
    assert not bad, "roles import other roles (move the shared code into llmrack/):\n" + "\n".join(
        f"  {m} -> {t}" for m, t in bad)


def test_library_imports_no_roles_and_roles_no_services():
    bad = sorted(
        (m, t) for m, targets in IMPORTS.items() for t in targets
        if (m.startswith("llmrack") and t.startswith("roles"))
        or (m.startswith("roles") and t.startswith(ROLE_FORBIDDEN))
    )
    assert not bad, "\n".join(f"  {m} -> {t}" for m, t in bad)


def test_imports_go_down_the_layers():
    bad = []
    for module, targets in IMPORTS.items():
        if not module.startswith("llmrack"):
            continue
        src = RANK[_unit(module)]
        for target in targets:
            if RANK[_unit(target)] < src and (module, target) not in ALLOWED:
                bad.append(f"  {module} (layer {src}) -> {target} (layer {RANK[_unit(target)]})")
    assert not bad, "imports going up the layers of DESIGN.md:\n" + "\n".join(sorted(bad))


def test_no_import_loops_between_units():
    graph: dict[str, set[str]] = {}
    for module, targets in IMPORTS.items():
        if module.startswith("llmrack"):
            u = _unit(module)
            graph.setdefault(u, set()).update(
                _unit(t) for t in targets if _unit(t) != u and (module, t) not in ALLOWED)
    loops = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                loops.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not loops, "import loops between packages:\n" + "\n".join(f"  {x}" for x in loops)


def _is_project_import(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "").split(".")[0] in ("llmrack", "roles")
    return isinstance(node, ast.Import) and any(a.name.split(".")[0] in ("llmrack", "roles") for a in node.names)


def _is_type_checking(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def hidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """Project imports inside a function or under ``if TYPE_CHECKING:`` (a cycle hidden from the reader),
    except those whose statement carries a ``# lazy: <reason>`` comment."""
    lines = source.splitlines()
    found: set[tuple[int, str]] = set()
    for outer in ast.walk(ast.parse(source, filename)):
        if isinstance(outer, (ast.FunctionDef, ast.AsyncFunctionDef)):
            where = "in a function"
        elif _is_type_checking(outer):
            where = "under TYPE_CHECKING"
        else:
            continue
        for node in ast.walk(outer):
            if not _is_project_import(node):
                continue
            text = "\n".join(lines[node.lineno - 1: (node.end_lineno or node.lineno)])
            if LAZY_REASON in text and text.split(LAZY_REASON, 1)[1].strip():
                continue
            name = node.module or "." if isinstance(node, ast.ImportFrom) else node.names[0].name
            found.add((node.lineno, f"line {node.lineno}: {name} ({where})"))
    return [text for _, text in sorted(found)]


def test_project_imports_are_at_the_top_of_modules():
    bad = {m: hidden_imports(p.read_text(), str(p)) for m, p in SOURCES.items() if not _lazy_allowed(m)}
    bad = {m: v for m, v in bad.items() if v}
    assert not bad, ("project imports hidden inside functions or TYPE_CHECKING blocks (move them to the top and "
                     "fix the loop they hide, or say why on the line with '# lazy: <reason>'):\n"
                     + "\n".join(f"  {m}: {', '.join(v)}" for m, v in sorted(bad.items())))


def test_the_hidden_import_reader_sees_them():
    source = (
        "from typing import TYPE_CHECKING\n"
        "import json\n"
        "from llmrack.errors import LlmrackError\n"
        "if TYPE_CHECKING:\n"
        "    from llmrack.config import Inventory\n"
        "def f():\n"
        "    import os\n"
        "    from llmrack import bench\n"
        "    from . import sibling\n"
        "    def g():\n"
        "        import llmrack.secrets\n"
        "    from llmrack.images import (  # lazy: an optional heavy dependency\n"
        "        cache_lock,\n"
        "    )\n"
        "    from llmrack.tls import trust_anchor  # lazy:\n"
    )
    assert hidden_imports(source) == [
        "line 5: llmrack.config (under TYPE_CHECKING)", "line 8: llmrack (in a function)",
        "line 9: . (in a function)", "line 11: llmrack.secrets (in a function)",
        "line 15: llmrack.tls (in a function)",  # a reason must follow the marker
    ]
    assert _lazy_allowed("llmrack.cli") and _lazy_allowed("llmrack.cli_plan")
    assert not _lazy_allowed("llmrack.client") and not _lazy_allowed("llmrack.verify.suite")


@pytest.mark.parametrize("module", ["roles.base", "llmrack.stack.compose"])
def test_the_reader_sees_imports(module):
    """The checks above are only as good as the import reader: it must see known imports."""
    assert IMPORTS[module], module
