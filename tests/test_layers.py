"""Imports point one way (issue 15, point 2), measured from the code's own imports.

Every .py file under macha/ and workers/ is parsed with ast; every import counts, at module level or inside a
function or method, `import x` and `from x import y`, relative ones resolved. Nothing is skipped, not even
`if TYPE_CHECKING:` blocks: a lazy import that hides a cycle is still a cycle.

1. The parts of macha/ (a `macha/<part>/` folder or a `macha/<part>.py` file) import only parts below them in
   LAYERS, or themselves. That also rules out cycles between parts.
2. No cycle between modules.
3. Nothing under macha/ except the interfaces (macha/cli/, macha/web/, macha/mcp/) imports celery or workers.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Top to bottom: a part may import only parts in a later row, or itself. Parts in one row may not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("cli",),  # the commands (macha-web and macha-mcp among them); workers/ and beat_schedule.py sit above all
    ("web", "mcp"),  # the interfaces the commands serve: the dashboard and the MCP server
    ("read",),  # the one read layer the interfaces share
    ("pipeline",),  # the plain functions behind the Celery tasks
    ("meta",),  # Layer 4
    ("review",),  # Layer 3
    ("context",),  # Layer 2
    ("monitor",),  # Layer 1
    ("actions",),
    ("llm",),  # model servers only: knows nothing of the action catalog
    ("broker",),  # the order of README's Layout tree, read from the bottom up
    ("store",),
    ("config",),
    ("core",),  # vocabulary: imports nothing from macha
]
# The package itself: __init__.py imports nothing, so it ranks with core.
PACKAGE_RANK = len(LAYERS) - 1
RANK = {part: i for i, row in enumerate(LAYERS) for part in row}

# Only these parts may import celery or workers.
CELERY_ALLOWED = {"cli", "web", "mcp"}


@dataclass(frozen=True)
class Import:
    path: Path  # the importing file
    line: int
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted (for `from a import b`, a.b when a.b is a module, else a)
    text: str  # the import as written

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.text}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> list[Path]:
    return sorted(p for top in ("macha", "workers") for p in (ROOT / top).rglob("*.py"))


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module a `from ... import` with `level` dots refers to."""
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def collect_imports(files: list[Path]) -> list[Import]:
    modules = {module_name(p) for p in files}
    found: list[Import] = []
    for path in files:
        module = module_name(path)
        is_package = path.name == "__init__.py"
        source = path.read_text()
        tree = ast.parse(source, filename=str(path))
        for node in ast.walk(tree):  # every node: module level, functions, methods, conditionals
            text = ast.get_source_segment(source, node) if isinstance(node, (ast.Import, ast.ImportFrom)) else None
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found.append(Import(path, node.lineno, module, alias.name, text or ""))
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node.level, node.module)
                for alias in node.names:
                    sub = f"{base}.{alias.name}" if base else alias.name
                    # `from macha.x import y` imports the module macha.x.y when there is one, else macha.x
                    target = sub if sub in modules else base
                    found.append(Import(path, node.lineno, module, target, text or ""))
    # `from a import b, c` names a once per statement, not once per name
    return list(dict.fromkeys(found))


def part_of(module: str) -> str | None:
    """The top-level part of macha a module belongs to; None outside macha. The package itself is ''."""
    names = module.split(".")
    if names[0] != "macha":
        return None
    return names[1] if len(names) > 1 else ""


def rank_of(part: str) -> int:
    if part == "":
        return PACKAGE_RANK
    assert part in RANK, f"macha/{part} is not in LAYERS in tests/test_layers.py: give it a place in the order"
    return RANK[part]


def layer_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        src, dst = part_of(imp.module), part_of(imp.target)
        if src is None or dst is None or src == dst:
            continue
        if rank_of(dst) <= rank_of(src) and not (rank_of(dst) == rank_of(src) == PACKAGE_RANK):
            bad.append(f"{imp.where()}  (macha/{src} imports macha/{dst}, which is not below it)")
    return bad


def celery_violations(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        src = part_of(imp.module)
        if src is None or src in CELERY_ALLOWED:
            continue
        top = imp.target.split(".")[0]
        if top in ("celery", "workers"):
            bad.append(f"{imp.where()}  (only the interfaces {sorted(CELERY_ALLOWED)} may import {top})")
    return bad


def module_cycles(imports: list[Import], modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        target = imp.target
        # `import macha.a.b` and `from macha.a.b import c` both run macha.a.b: an edge to the nearest known module.
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != imp.module:
            graph[imp.module].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    sccs: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        # iterative Tarjan: a deep import chain must not hit the recursion limit
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    scc = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        scc.append(w)
                        if w == node:
                            break
                    if len(scc) > 1:
                        sccs.append(sorted(scc))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return sccs


def _edges_within(imports: list[Import], scc: list[str], modules: set[str]) -> list[str]:
    members = set(scc)
    lines = []
    for imp in imports:
        target = imp.target
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if imp.module in members and target in members and target != imp.module:
            lines.append(f"    {imp.where()}")
    return lines


def _imports() -> tuple[list[Import], set[str]]:
    files = source_files()
    return collect_imports(files), {module_name(p) for p in files}


def test_parts_import_only_downward():
    imports, _ = _imports()
    bad = layer_violations(imports)
    order = " > ".join("/".join(row) for row in LAYERS)
    assert not bad, f"{len(bad)} imports point up or sideways (order, top to bottom: {order}):\n" + "\n".join(bad)


def test_no_cycle_between_modules():
    imports, modules = _imports()
    cycles = module_cycles(imports, modules)
    report = []
    for scc in cycles:
        report.append("cycle among " + ", ".join(scc) + ":")
        report.extend(_edges_within(imports, scc, modules))
    assert not cycles, f"{len(cycles)} import cycles between modules:\n" + "\n".join(report)


def test_only_the_interfaces_import_celery_or_workers():
    imports, _ = _imports()
    bad = celery_violations(imports)
    assert not bad, f"{len(bad)} imports of celery or workers below the interfaces:\n" + "\n".join(bad)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The measure itself: function-level, relative and TYPE_CHECKING imports all count."""
    pkg = tmp_path / "macha" / "review"
    pkg.mkdir(parents=True)
    (tmp_path / "macha" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "run.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from macha.cli import ai\n"
        "def f():\n    from ..meta import analysis\n    import celery\n"
    )
    global ROOT
    saved = ROOT
    ROOT = tmp_path
    try:
        files = sorted((tmp_path / "macha").rglob("*.py"))
        imports = collect_imports(files)
        targets = {(i.module, i.target) for i in imports}
        assert ("macha.review.run", "macha.cli") in targets or ("macha.review.run", "macha.cli.ai") in targets
        assert ("macha.review.run", "macha.meta") in targets or ("macha.review.run", "macha.meta.analysis") in targets
        assert len(layer_violations(imports)) == 2
        assert len(celery_violations(imports)) == 1
        assert "macha/review/run.py:6" in celery_violations(imports)[0]
    finally:
        ROOT = saved
