"""Shared fixtures: real MNIST, isolation from the user's caches, and tiny configs."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.browser import Browser, find_chromium

from mnist_models.config import DataConfig, TrainConfig
from mnist_models.data import MnistData, Splits, load_from_folder, make_splits
from tracking.environment import configure_mlflow
from tracking.server import MlflowServer

ROOT = Path(__file__).resolve().parents[1]


def _find_mnist() -> Path | None:
    for candidate in (os.environ.get("MNIST_DIR"), ROOT.parent / "shared" / "data" / "mnist"):
        if candidate and (Path(candidate) / "train-images-idx3-ubyte.gz").is_file():
            return Path(candidate).resolve()
    return None


@pytest.fixture(autouse=True)
def mlflow_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's settings as every command sets them at its start (tracking.environment)."""
    environ = dict(os.environ)
    configure_mlflow(environ)
    for name, value in environ.items():
        if os.environ.get(name) != value:
            monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def isolated_data_sources(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test touches the user's cache, Keras folder or the internet."""
    # Tests name MNIST explicitly (the ``mnist_dir`` fixture, read once per session before this
    # runs); the ambient $MNIST_DIR must not leak into tests of the lookup order.
    monkeypatch.delenv("MNIST_DIR", raising=False)
    # Commands run by tests log where each test says (or into its own folder), never into a
    # store the developer's shell points at.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MNIST_SWEEPS_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras")))
    monkeypatch.setenv("MNIST_MIRRORS", "http://127.0.0.1:9/")  # closed port: fails at once
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder of the four real MNIST files ($MNIST_DIR or ../shared/data/mnist)."""
    found = _find_mnist()
    if found is None:
        pytest.skip("full MNIST not available (set MNIST_DIR)")
    return found


@pytest.fixture(scope="session")
def mnist(mnist_dir: Path) -> MnistData:
    data = load_from_folder(mnist_dir)
    assert data is not None
    return data


@pytest.fixture(scope="session")
def small_splits(mnist: MnistData) -> Splits:
    """2,500 real training images (500 of them validation) and 1,000 test images."""
    return make_splits(mnist, DataConfig(train_size=2500, val_fraction=0.2, test_size=1000), 0)


@pytest.fixture
def tiny_config() -> TrainConfig:
    """Shrinks the default config to a second or two of training."""
    return shrink(TrainConfig())


def shrink(config: TrainConfig) -> TrainConfig:
    """Any config, made small: 2 epochs of a 32-wide MLP on the small slice."""
    return config.replace(
        {"epochs": 2, "mlp.hidden_sizes": [32], "batch_size": 64, "lr": 0.003, "dropout": 0.1}
    )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Keeps each phase's report on the test item, for fixtures that act on failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def _chromium() -> Iterator[Browser]:
    found = find_chromium()
    if found is None:
        if os.environ.get("MNIST_SWEEPS_REQUIRE_BROWSER"):
            pytest.fail("no chromium/chromedriver, and MNIST_SWEEPS_REQUIRE_BROWSER is set")
        pytest.skip("no chromium/chromedriver installed (apt install chromium chromium-driver)")
    browser = Browser(*found)
    yield browser
    browser.quit()


@pytest.fixture
def browser(_chromium: Browser, request: pytest.FixtureRequest) -> Iterator[Browser]:
    """Headless Chromium; a failing test leaves a screenshot and its page's HTML behind."""
    yield _chromium
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        folder = Path(os.environ.get("TEST_ARTIFACTS_DIR") or ROOT / "test-artifacts")
        saved = _chromium.save_evidence(folder, request.node.name)
        print(f"browser evidence: {', '.join(map(str, saved))}")


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def _pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database (its URL), dropped afterwards; skips without a server."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    name = f"mnist_sweeps_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def pg_storage() -> Iterator[str]:
    """A fresh PostgreSQL database for one test's Optuna storage, dropped afterwards."""
    with _pg_database() as url:
        yield url


@pytest.fixture
def pg_mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """An ``mlflow server`` as at scale: a fresh PostgreSQL database as its backend store
    (dropped afterwards) and proxied artifacts (``--serve-artifacts``) in a folder of its own."""
    with _pg_database() as url:
        folder = tmp_path_factory.mktemp("mlflow-server")
        with MlflowServer(url, folder / "artifacts", log_file=folder / "server.log") as server:
            yield server
