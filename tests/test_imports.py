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


def test_cli_layer_never_imports_the_binding_sqlite_vec_or_llama_cpp():
    forbidden = {"sqlite3", "pysqlite3", "sqlite_vec", "llama_cpp"}
    for path in (PACKAGE / "cli").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_only_db_module_imports_a_sqlite_binding():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "db.py":
            continue
        source = path.read_text()
        assert "import pysqlite3" not in source and "import sqlite3" not in source, path


def test_facts_list_does_not_import_heavy_modules(tmp_path):
    code = (
        "import sys, json\n"
        "from memllm_cli.cli import main\n"
        "sys.argv = ['memllm', '--db', sys.argv[1], 'facts', 'list', '--jsonl']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n"
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
