"""Only public APIs of Optuna, MLflow and Keras: no private attribute, module or logger.

A private name can change in any release (Optuna renamed ``failed_trial_callback`` within a
minor version). Where no public API exists, the line (or the one above it) says so with
``# no public API:`` and why; this test then lets it pass.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mnist_models", "tracking", "sweeps")
WAIVER = "no public API:"
# Underscored names that are public by the standard library's own documentation.
PUBLIC_UNDERSCORED = {
    "_replace",  # namedtuple and urllib.parse results
    "_asdict",
    "_fields",
    "_make",
    "_exit",  # os._exit
}
PRIVATE_MODULE = re.compile(r"^(optuna|mlflow|keras)(\.\w+)*\._\w")


def _findings(path: Path, root: Path = ROOT) -> list[str]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        what = None
        if isinstance(node, ast.Attribute):
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            own = isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")
            if private and not own and node.attr not in PUBLIC_UNDERSCORED:
                what = f"private attribute {ast.unparse(node)}"
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if PRIVATE_MODULE.match(node.module):
                what = f"private module {node.module}"
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if PRIVATE_MODULE.match(alias.name)]
            what = f"private module {names[0]}" if names else None
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and PRIVATE_MODULE.match(node.value)  # e.g. a logger named after a private module
        ):
            what = f"private module name {node.value!r}"
        if what is None:
            continue
        line = node.lineno
        if any(WAIVER in lines[i - 1] for i in (line, line - 1) if i >= 1):
            continue
        found.append(f"{path.relative_to(root)}:{line}: {what}")
    return sorted(found)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_private_api_without_a_reason(package: str) -> None:
    found = [f for path in sorted((ROOT / package).rglob("*.py")) for f in _findings(path)]
    assert not found, "\n".join(found)


def test_the_check_sees_what_it_should(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import logging\n"
        "from optuna.study._optimize import _run_trial\n"
        "entity = dataset._to_mlflow_entity()\n"
        "trial_id = trial._trial_id\n"
        "self._cache = {}\n"
        "logging.getLogger('optuna.study._optimize')\n"
        "url = parts._replace(netloc='x')\n"
        "# no public API: the storage id of a FrozenTrial\n"
        "waived = trial._trial_id\n",
        encoding="utf-8",
    )
    found = _findings(sample, tmp_path)
    assert [f.split(": ", 1)[0] for f in found] == [
        "sample.py:2",
        "sample.py:3",
        "sample.py:4",
        "sample.py:6",
    ], found
