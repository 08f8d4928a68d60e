"""Architecture rules: the CLI layer stays thin, and light commands stay light."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import memllm_cli

PACKAGE = Path(memllm_cli.__file__).parent
HEAVY = ("torch", "transformers", "sentence_transformers", "llama_cpp", "numpy")
# The MCP SDK (the optional [mcp] extra) and what it brings: `memllm mcp` alone imports them.
MCP_SDK = ("mcp", "mcp_types", "pydantic", "uvicorn", "starlette", "anyio")
BINDINGS = {"sqlite3", "pysqlite3", "apsw", "sqlean"}  # SQLite bindings: store/db.py chooses


def imported_roots(path: Path) -> set[str]:
    """The top-level names ``path`` imports, lazily or not."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_cli_layer_never_imports_the_binding_sqlite_vec_or_llama_cpp():
    forbidden = BINDINGS | {"sqlite_vec", "llama_cpp"}
    for path in (PACKAGE / "cli").glob("*.py"):
        assert not imported_roots(path) & forbidden, path.name


def test_only_db_module_imports_a_sqlite_binding():
    importers = {
        path.relative_to(PACKAGE.parent).as_posix()
        for root in (PACKAGE, PACKAGE.parent / "bench", PACKAGE.parent / "scripts")
        for path in root.rglob("*.py")
        if imported_roots(path) & BINDINGS
    }
    assert importers == {"memllm_cli/store/db.py"}


def test_facts_list_does_not_import_heavy_modules_or_the_mcp_sdk(tmp_path):
    forbidden = HEAVY + MCP_SDK
    code = (
        "import sys, json\n"
        "from memllm_cli.cli import main\n"
        "sys.argv = ['memllm', '--db', sys.argv[1], 'facts', 'list', '--jsonl']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {forbidden!r} if m in sys.modules]), file=sys.stderr)\n"
    )
    env = {**os.environ, "MEMLLM_EMBEDDER": "minilm"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.db")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(done.stderr.strip().splitlines()[-1]) == []


def test_only_the_mcp_server_module_imports_the_mcp_sdk():
    """The [mcp] extra is optional: one module imports it, and only `memllm mcp` that module."""
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            if any(name.split(".")[0] in MCP_SDK for name in names):
                importers.add(str(path.relative_to(PACKAGE)))
    assert importers == {"mcp_server/server.py"}
    graph = _import_graph()
    assert {m for m, targets in graph.items() if "memllm_cli.mcp_server.server" in targets} == {
        "memllm_cli.cli.mcp"
    }


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _import_graph() -> dict[str, set[str]]:
    """Every import of one memllm_cli module by another, at any depth (lazy ones too)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in node.names:
                    child = f"{base}.{alias.name}"
                    targets.append(child if child in modules else base)
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_modules():
    assert _cycle(_import_graph()) is None


def test_no_import_cycle_between_packages():
    """cli -> eval/train -> ingest -> runtime -> store -> embed, never back."""
    top: dict[str, set[str]] = {}
    for module, targets in _import_graph().items():
        source = ".".join(module.split(".")[:2])
        top.setdefault(source, set())
        top[source] |= {".".join(t.split(".")[:2]) for t in targets} - {source}
    assert _cycle(top) is None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_is_over_400_lines():
    long = {
        str(path.relative_to(PACKAGE)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 400
    }
    assert long == {}


def test_only_the_store_touches_the_connection():
    """The store's components own their SQL; everything else calls the facade."""
    for path in PACKAGE.rglob("*.py"):
        if (PACKAGE / "store") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in {"conn", "_conn", "connection"}:
                raise AssertionError(
                    f"{path.relative_to(PACKAGE)}:{node.lineno} uses the connection"
                )
