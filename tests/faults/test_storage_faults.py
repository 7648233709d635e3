"""An Optuna storage that cannot be opened: one clear line, the password never shown.

Every command that takes ``--storage`` is run as a user would (a separate process, so that
Python's logging and warnings land in the captured output too) against a database server that
is down, a host that does not resolve, a database and a role that do not exist, and a MySQL
server that is down. Each must exit with the CLI's config-error code in seconds, print exactly
one line naming ``--storage`` with the password replaced by ``***``, and create nothing.

The local PostgreSQL trusts every connection, so it cannot reject a wrong password; the path
by which a server refuses credentials (a FATAL from the server during the login) is the same
one the nonexistent role takes, and that case covers it.
"""

from __future__ import annotations

import functools
import importlib.util
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers.cli import run_cli

from tracking.server import free_port

pytestmark = pytest.mark.fault

EXIT_CONFIG = 2  # sweeps.cli EXIT_CONFIG: bad input in a flag, file or URL
PASSWORD = "S3cr3t-pw"
PG = "127.0.0.1:5432"

COMMANDS = {
    "sweep": ["sweep", "--study", "s", "--trials", "1", "--epochs", "1"],
    "studies": ["studies"],
    "best": ["best", "--study", "s", "--output", "best.toml"],
    "worker": ["worker", "--study", "s", "--trials", "1"],
    "report": ["report", "--study", "s"],
}
EVERY = ("sweep", "studies", "best", "worker")  # `report` once: each run costs seconds of imports


@functools.cache
def _postgres_reachable() -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        psycopg.connect(f"postgresql://postgres@{PG}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def _driver(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _case(
    url: str,
    commands: tuple[str, ...] = EVERY,
    *,
    needs: str | None = None,
    skip_if: str | None = None,
) -> object:
    marks = []
    if needs == "postgres-server":
        marks.append(pytest.mark.skipif(not _postgres_reachable(), reason=f"no PostgreSQL on {PG}"))
    elif needs is not None:
        marks.append(pytest.mark.skipif(not _driver(needs), reason=f"driver {needs} not installed"))
    if skip_if is not None:
        marks.append(pytest.mark.skipif(_driver(skip_if), reason=f"{skip_if} is installed"))
    return pytest.param(url, commands, marks=marks)


CASES = {
    "postgres-closed-port": _case(
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/test",
        (*EVERY, "report"),
        needs="psycopg",
    ),
    "postgres-unknown-host": _case(
        f"postgresql://postgres:{PASSWORD}@nonexistent.invalid:5432/test", needs="psycopg"
    ),
    "postgres-no-such-database": _case(
        f"postgresql://postgres:{PASSWORD}@{PG}/missing_{uuid.uuid4().hex[:10]}",
        needs="postgres-server",
    ),
    # What a rejected login looks like with trust auth: the server answers FATAL at login.
    "postgres-no-such-role": _case(
        f"postgresql://nobody_{uuid.uuid4().hex[:8]}:{PASSWORD}@{PG}/test",
        needs="postgres-server",
    ),
    "mysql-closed-port": _case(
        f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:{free_port()}/test", needs="pymysql"
    ),
    # Without the driver the error must still be one line that names what is missing.
    "mysql-no-driver": _case(
        f"mysql+pymysql://root:{PASSWORD}@127.0.0.1:{free_port()}/test",
        ("studies", "sweep"),
        skip_if="pymysql",
    ),
}


@pytest.mark.parametrize(("url", "commands"), list(CASES.values()), ids=list(CASES))
def test_an_unopenable_storage_is_one_redacted_line(
    url: str, commands: tuple[str, ...], tmp_path: Path, mnist_dir: Path
) -> None:
    redacted = url.replace(f":{PASSWORD}@", ":***@")
    assert redacted != url

    def run(name: str) -> tuple[str, float, str, str, int, list[str]]:
        folder = tmp_path / name
        folder.mkdir()
        started = time.monotonic()
        done = run_cli([*COMMANDS[name], "--storage", url], folder, mnist_dir, timeout=120)
        left = sorted(p.name for p in folder.iterdir())
        return name, time.monotonic() - started, done.stdout, done.stderr, done.returncode, left

    # Two at a time: the commands are independent, and each one mostly waits on imports.
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, commands))

    for name, seconds, stdout, stderr, code, left in results:
        shown = f"{name}: exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        assert PASSWORD not in stdout + stderr, shown
        assert code == EXIT_CONFIG, shown
        assert stdout == "", shown
        lines = stderr.splitlines()
        assert len(lines) == 1, shown
        assert lines[0].startswith("mnist-sweep: error: --storage "), shown
        assert redacted in lines[0], shown
        assert "Traceback" not in stderr, shown
        assert seconds < 60, f"{name} took {seconds:.1f}s to fail"  # ~3 s on an idle machine
        assert left == [], f"{name} left {left} in the working folder"
    if "pymysql" in url and not _driver("pymysql"):
        assert all("pymysql" in stderr for _, _, _, stderr, _, _ in results)
