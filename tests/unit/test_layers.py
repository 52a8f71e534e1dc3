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
     "llmrack.cli_rollout"),
    # services run from the CLI or the deploys
    ("llmrack.verify", "llmrack.stack.smoke", "llmrack.stack.smoke_http", "llmrack.stack.smoke_stream", "llmrack.bench",
     "llmrack.backup", "llmrack.rebuild",
     "llmrack.migrate", "llmrack.migrate_run", "llmrack.rollout", "llmrack.burnin", "llmrack.advisor", "llmrack.export",
     "llmrack.sandbox", "llmrack.sandbox_image", "llmrack.sandbox_state", "llmrack.validate"),
    # what a host runs and how it gets there
    ("llmrack.stack", "llmrack.monitoring", "llmrack.bundle", "llmrack.bundle_apt", "llmrack.images",
     "llmrack.tinymodel"),
    # how roles change a host
    ("llmrack.ops", "llmrack.reboot", "llmrack.progress"),
    ("llmrack.facts",),
    # secrets on the admin machine; paths, ports, addresses, the bundle's manifest
    ("llmrack.secrets", "llmrack.tls", "llmrack.httpclient", "llmrack.layout", "llmrack.manifest",
     "llmrack.exposure", "llmrack.checkresult"),
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
    # models reads the tiny model's RECIPE constant; tinymodel.py keeps stdlib-only module imports because it
    # is also the worker script run by the vLLM staging interpreter, so the constant cannot move to a module
    # it would have to import
    ("llmrack.models", "llmrack.tinymodel"),
}


# Modules that may import project code inside functions, and why. Everywhere else imports go at the top,
# where a reader (and this test) sees every dependency of the module at once.
LAZY_ALLOWED: dict[str, str] = {
    "llmrack.cli": "a fast --help: commands load the library they call",
    "llmrack.cli_plan": "a fast --help",
    "llmrack.cli_data": "a fast --help",
    "llmrack.cli_migrate": "a fast --help",
    "llmrack.cli_rollout": "a fast --help",
    "llmrack.tinymodel": "also the worker script of the vLLM staging interpreter: stdlib-only module imports",
    "llmrack.verify.security.controls": "its probes register themselves on import and import controls",
    "llmrack.verify.checks_performance": "loads the load driver (httpx) only when a performance check runs; "
                                         "checklist_perf imports it back",
    "llmrack.verify.checklist_perf": "loads the load driver (httpx) only when a performance check runs",
    "llmrack.verify.checks_rag": "loads the load driver (httpx) only when the RAG check runs",
    "llmrack.stack.smoke": "rebuild and verify import it; it reads the stack's addresses and secrets only when run",
}


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


def _lazy_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("llmrack")):
                    found.append(f"line {node.lineno}: from {node.module or '.'}")
                elif isinstance(node, ast.Import) and any(a.name.startswith("llmrack") for a in node.names):
                    found.append(f"line {node.lineno}: import {node.names[0].name}")
    return found


def test_project_imports_are_at_the_top_of_modules():
    bad = {m: _lazy_imports(p) for m, p in SOURCES.items() if m not in LAZY_ALLOWED}
    bad = {m: v for m, v in bad.items() if v}
    assert not bad, "project imports inside functions (move them to the top, or give a reason in LAZY_ALLOWED):\n" + (
        "\n".join(f"  {m}: {', '.join(v)}" for m, v in sorted(bad.items())))


@pytest.mark.parametrize("module", ["roles.base", "llmrack.stack.compose"])
def test_the_reader_sees_imports(module):
    """The checks above are only as good as the import reader: it must see known imports."""
    assert IMPORTS[module], module
