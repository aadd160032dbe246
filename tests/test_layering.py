"""The house stays the way DESIGN.md draws it: dependencies point one way, no import cycles.

Every module under ``tradelab/`` and ``runners/`` is parsed with :mod:`ast` (imports inside
functions count too) and each import of another tradelab part is checked against ``ALLOWED``,
the layering table of DESIGN.md written out, including for parts that do not exist yet.
"""

from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The parts of the house, most specific prefix first (module path -> part).
PARTS = (
    "tradelab.errors",
    "tradelab.core",
    "tradelab.yamlconfig",
    "tradelab.net",
    "tradelab.store",
    "tradelab.features",
    "tradelab.matching",
    "tradelab.adapters",
    "tradelab.collect",
    "tradelab.venue",
    "tradelab.synth",
    "tradelab.strategies",
    "tradelab.backtest.vector",
    "tradelab.backtest.event",
    "tradelab.backtest",
    "tradelab.validate",
    "tradelab.compute",
    "tradelab.report",
    "tradelab.live",
    "tradelab.cli",
    "tradelab.demo",
    "tradelab",
    "runners",
)

_GROUND = {"errors", "core"}
_BELOW_TOP = {
    "errors",
    "core",
    "yamlconfig",
    "net",
    "store",
    "features",
    "matching",
    "adapters",
    "collect",
    "venue",
    "synth",
    "strategies",
    "backtest",
    "backtest.vector",
    "backtest.event",
    "validate",
    "compute",
    "report",
    "live",
}

# part -> the other parts it may import (DESIGN.md, "Dependencies point one way").
ALLOWED: dict[str, set[str]] = {
    # ground floor
    "errors": set(),
    "core": {"errors"},
    "yamlconfig": {"errors"},  # the one YAML + pydantic loader
    "net": {"errors"},  # TLS and other plumbing without exchange knowledge
    "store": _GROUND,
    "features": _GROUND,
    "matching": _GROUND,  # beside features: book, queue, latency, fee models
    "adapters": _GROUND | {"store"},  # adapters may use the store's types
    # strategies use features only
    "strategies": _GROUND | {"features"},
    # data in: on store and adapters; collect and venue never import each other
    "collect": _GROUND | {"store", "adapters", "net", "yamlconfig"},
    "venue": _GROUND | {"store", "adapters", "net", "yamlconfig", "synth", "matching"},
    "synth": _GROUND | {"store", "adapters"},
    # research
    # what both backtesters share: the run store, the trial registry, the sweep metrics
    "backtest": _GROUND | {"strategies", "validate", "store"},
    "backtest.vector": _GROUND
    | {
        "backtest",
        "strategies",
        "features",
        "matching",
        "store",
        "validate",
        "compute",
        "yamlconfig",
    },
    "backtest.event": _GROUND
    | {
        "backtest",
        # agreement checks re-run the sweep's own simulation of a chosen set (one way only:
        # backtest.vector never imports backtest.event)
        "backtest.vector",
        "strategies",
        "features",
        "matching",
        "store",
        "validate",
        "compute",
        "yamlconfig",
    },
    "validate": _GROUND,  # and only numpy / scipy outside the standard library
    "compute": _GROUND,  # knows nothing of what it runs
    "report": _GROUND
    | {"store", "strategies", "backtest", "backtest.vector", "backtest.event", "validate",
       "yamlconfig", "compute"},  # the nightly's jobs run through compute
    # live: never the venue (only over the network, through cryptofeed / ccxt)
    "live": _GROUND
    | {"strategies", "features", "matching", "adapters", "store", "net", "yamlconfig", "report"},
    # the top: nothing below imports cli, demo or runners
    "tradelab": set(),
    "cli": _BELOW_TOP | {"demo"},
    "demo": _BELOW_TOP,
    "runners": _GROUND | {"live", "strategies", "adapters", "store", "report", "yamlconfig", "net"},
}

# Third-party packages a part may import (standard library always allowed); parts not listed
# are not restricted here.
EXTERNAL_ALLOWED: dict[str, set[str]] = {
    "validate": {"numpy", "scipy"},
    "core": {"numpy", "pandas", "numba"},
    "errors": set(),
}

# Third-party imports outside EXTERNAL_ALLOWED that are part of a documented contract.
EXTERNAL_EXCEPTIONS: dict[tuple[str, str], str] = {
    # walk_forward returns its windows and stability as DataFrames and takes a sweep's frame;
    # pandas is imported inside the function (validate/__init__ says so), not by the package.
    ("tradelab.validate.walkforward", "pandas"): "documented result type",
}

# Edges that break the table today, each with the branch that removes it. Keyed by
# (importing module, imported part): only that one edge is excused.
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Edge:
    module: str  # importing module, dotted
    target: str  # imported module, dotted
    line: int

    @property
    def source_part(self) -> str:
        return part_of(self.module)

    @property
    def target_part(self) -> str:
        return part_of(self.target)


def part_of(module: str) -> str:
    """The part of the house a dotted module name belongs to (``''`` if none)."""
    for prefix in PARTS:
        if module == prefix or module.startswith(prefix + "."):
            return prefix.removeprefix("tradelab.") if prefix != "tradelab" else "tradelab"
    return ""


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _known_modules(root: Path, packages: tuple[str, ...]) -> set[str]:
    out = set()
    for pkg in packages:
        for path in (root / pkg).rglob("*.py"):
            out.add(_module_name(path, root))
    return out


def import_edges(
    root: Path, packages: tuple[str, ...] = ("tradelab", "runners")
) -> tuple[list[Edge], list[tuple[str, str, int]]]:
    """Every import between modules of ``packages`` under ``root``, and every third-party
    import as ``(module, top-level name, line)``."""
    known = _known_modules(root, packages)
    internal_tops = set(packages)
    edges: list[Edge] = []
    external: list[tuple[str, str, int]] = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            module = _module_name(path, root)
            is_pkg = path.name == "__init__.py"
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = module.split(".")
                        base = base if is_pkg else base[:-1]
                        base = base[: len(base) - (node.level - 1)]
                        mod = ".".join(base + ([node.module] if node.module else []))
                    else:
                        mod = node.module or ""
                    targets = []
                    for alias in node.names:
                        sub = f"{mod}.{alias.name}"
                        targets.append(sub if sub in known else mod)
                else:
                    continue
                for target in targets:
                    top = target.split(".")[0]
                    if top in internal_tops:
                        if target != module:
                            edges.append(Edge(module, target, node.lineno))
                    elif top and top not in sys.stdlib_module_names and top != "__future__":
                        external.append((module, top, node.lineno))
    return edges, external


def violations(
    edges: list[Edge],
    external: list[tuple[str, str, int]] | None = None,
    allowed: dict[str, set[str]] = ALLOWED,
    exceptions: dict[tuple[str, str], str] | None = None,
) -> list[str]:
    """Edges against the table, one line each: ``module:line imports target (a -> b)``."""
    exceptions = KNOWN_EXCEPTIONS if exceptions is None else exceptions
    out = []
    for e in edges:
        src, dst = e.source_part, e.target_part
        if src == dst or (e.module, dst) in exceptions:
            continue
        if dst not in allowed.get(src, set()):
            out.append(f"{e.module}:{e.line} imports {e.target} ({src} -> {dst} is not allowed)")
    for module, top, line in external or []:
        ok = EXTERNAL_ALLOWED.get(part_of(module))
        if ok is not None and top not in ok and (module, top) not in EXTERNAL_EXCEPTIONS:
            out.append(
                f"{module}:{line} imports {top} (third-party; {part_of(module)} may use "
                f"only {sorted(ok) or 'the standard library'})"
            )
    return list(dict.fromkeys(out))  # one line per import statement, however many names


def part_cycles(edges: list[Edge]) -> list[list[str]]:
    """Import cycles between parts (strongly connected groups of more than one part)."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.source_part != e.target_part:
            graph.setdefault(e.source_part, set()).add(e.target_part)
            graph.setdefault(e.target_part, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

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
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


# -- the house ---------------------------------------------------------------------------------


@functools.cache
def _house() -> tuple[list[Edge], list[tuple[str, str, int]]]:
    return import_edges(ROOT)


def test_every_module_belongs_to_a_part_of_the_table():
    edges, _ = _house()
    modules = {e.module for e in edges} | {e.target for e in edges}
    assert not [m for m in modules if part_of(m) not in ALLOWED]


def test_imports_follow_the_layering_of_design_md():
    edges, external = _house()
    assert len(edges) > 100  # the walk really saw the code
    bad = violations(edges, external)
    assert not bad, "imports against DESIGN.md's layering:\n" + "\n".join(bad)


def test_known_exceptions_are_still_needed():
    edges, _ = _house()
    used = {(e.module, e.target_part) for e in edges}
    stale = [k for k in KNOWN_EXCEPTIONS if k not in used]
    assert not stale, f"remove these exceptions, the edge is gone: {stale}"


def test_no_import_cycles_between_parts():
    edges, _ = _house()
    assert part_cycles(edges) == []


# -- the checker catches what it should ---------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for pkg in ("tradelab", "runners"):
        (root / pkg).mkdir(exist_ok=True)
    for d in root.rglob("*"):
        if d.is_dir() and not (d / "__init__.py").exists():
            (d / "__init__.py").write_text("")
    return root


def test_a_forbidden_import_is_reported(tmp_path):
    root = _tree(
        tmp_path,
        {
            "tradelab/collect/importer.py": "def f():\n    from tradelab.venue.book import X\n",
            "tradelab/venue/book.py": "from ..adapters.binance import depth_sync\nX = 1\n",
            "tradelab/adapters/binance/depth_sync.py": "",
            "tradelab/strategies/carry.py": "from tradelab import store\n",
            "tradelab/store/__init__.py": "",
            "tradelab/validate/stats.py": "import numpy\nimport pandas\nimport math\n",
            "tradelab/live/runner.py": "import tradelab.venue.book\n",
            "tradelab/features/x.py": "from tradelab.cli import main\n",
            "tradelab/cli.py": "def main():\n    pass\n",
        },
    )
    edges, external = import_edges(root)
    bad = violations(edges, external, exceptions={})
    assert bad == [
        "tradelab.collect.importer:2 imports tradelab.venue.book (collect -> venue is not allowed)",
        "tradelab.features.x:1 imports tradelab.cli (features -> cli is not allowed)",
        "tradelab.live.runner:1 imports tradelab.venue.book (live -> venue is not allowed)",
        "tradelab.strategies.carry:1 imports tradelab.store (strategies -> store is not allowed)",
        "tradelab.validate.stats:2 imports pandas (third-party; validate may use only "
        "['numpy', 'scipy'])",
    ]
    # the relative import of the venue resolved to the adapter, which it may use
    assert Edge("tradelab.venue.book", "tradelab.adapters.binance.depth_sync", 1) in edges
    # a known exception excuses exactly its own edge
    excused = violations(
        edges, external, exceptions={("tradelab.strategies.carry", "store"): "branch x"}
    )
    assert len(excused) == len(bad) - 1


def test_a_cycle_between_parts_is_reported(tmp_path):
    root = _tree(
        tmp_path,
        {
            "tradelab/collect/a.py": "from tradelab.venue import b\n",
            "tradelab/venue/b.py": "from tradelab.synth import c\n",
            "tradelab/synth/c.py": "import tradelab.collect.a\n",
            "tradelab/store/d.py": "from tradelab.core import e\n",
            "tradelab/core/e.py": "",
        },
    )
    edges, _ = import_edges(root)
    assert part_cycles(edges) == [["collect", "synth", "venue"]]
