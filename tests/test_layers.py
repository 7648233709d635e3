"""The three packages import in one direction only: sweeps → tracking → mnist_models."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "mnist_models": {"mlflow", "optuna", "tracking", "sweeps"},
    "tracking": {"optuna", "sweeps"},
}


def _loaded_after_import(package: str) -> set[str]:
    code = (
        "import importlib, json, pkgutil, sys\n"
        f"pkg = importlib.import_module({package!r})\n"
        "for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_importing_a_layer_loads_nothing_above_it(package: str) -> None:
    loaded = _loaded_after_import(package)
    assert package in loaded
    assert not loaded & FORBIDDEN[package], f"{package} pulled in {loaded & FORBIDDEN[package]}"


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_source_file_names_a_forbidden_module(package: str) -> None:
    """Catches imports hidden in functions, which importing the module would not execute."""
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN[package], f"{path}: imports {name}"
