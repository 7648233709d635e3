"""The MLflow UI of a real sweep, clicked through in headless Chromium like a user would.

Skipped only where no Chromium is installed; ``.ci/run`` installs Debian's ``chromium`` and
``chromium-driver`` and sets ``MNIST_SWEEPS_REQUIRE_BROWSER=1``, so CI fails instead of
skipping. On failure each test leaves a screenshot and the page's HTML in
``test-artifacts/`` (or ``$TEST_ARTIFACTS_DIR``).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import run_cli, start_cli, wait_for_ui
from mlflow import MlflowClient

from tracking.server import free_port

pytestmark = pytest.mark.browser

WAIT = 60  # seconds; the first page load compiles the UI's large bundle


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    """A finished 2-trial MLP sweep in a temporary store."""
    work = tmp_path_factory.mktemp("ui-sweep")
    done = run_cli(
        [
            *("sweep", "--model", "mlp", "--trials", "2", "--epochs", "2", "--study", "ui"),
            *("--storage", f"sqlite:///{work / 'optuna.db'}"),
            *("--tracking-uri", f"sqlite:///{work / 'mlflow.db'}", "--experiment", "ui-check"),
            *("--set", "data.train_size=2000", "--set", "data.test_size=500"),
            *("--set", "mlp.hidden_sizes=[32]"),
        ],
        work,
        mnist_dir,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return work


@pytest.fixture(scope="module")
def ui_url(swept: Path, mnist_dir: Path) -> Iterator[str]:
    """``mnist-sweep ui`` on a free loopback port; yields the experiment URL it printed."""
    port = free_port()
    store = f"sqlite:///{swept / 'mlflow.db'}"
    process = start_cli(
        ["ui", "--tracking-uri", store, "--port", str(port)], swept, mnist_dir, interruptible=True
    )
    shown = wait_for_ui(process)
    found = re.search(r"ui-check: (http://127\.0\.0\.1:\d+/\S+)", shown)
    try:
        assert found, shown
        yield found.group(1)
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        output, _ = process.communicate(timeout=30)
        assert process.returncode == 130, output  # 128 + SIGINT, as for every command
        assert output.strip().splitlines()[-1] == "interrupted; the MLflow UI is stopped"
        time.sleep(0.5)
        left = subprocess.run(["pgrep", "-f", f"mlflow server .*--port {port}"], check=False)
        assert left.returncode == 1, "a process of the UI outlived Ctrl-C"


def expander_of(run_name: str, browser) -> Callable[[], Any]:
    """Finds the expand button in the row of the parent run ``run_name``."""
    from selenium.webdriver.common.by import By

    xpath = "./ancestor::*[@role='gridcell'][1]//button"
    return lambda: browser.until_link(run_name).find_element(By.XPATH, xpath)


def test_experiment_page_lists_the_study_and_its_trials_with_key_columns(
    ui_url: str, browser, swept: Path
) -> None:
    from selenium.webdriver.common.by import By

    assert "127.0.0.1" in ui_url and "workflowType=machine_learning" in ui_url
    browser.get(ui_url)
    wanted = {"val_accuracy", "test_accuracy", "lr", "batch_size"}
    browser.until(
        lambda page: (
            wanted
            <= {cell.text for cell in page.find_elements(By.CSS_SELECTOR, "[role=columnheader]")}
        )
    )
    browser.click(expander_of("study-ui", browser))  # the parent's "+": shows its trials
    names = [browser.until(lambda _, n=n: browser.until_link(f"trial-00{n}").text) for n in (0, 1)]
    for name in names:  # names that sort and read well
        assert re.fullmatch(r"trial-00\d lr=[\d.e-]+ bs=\d+ do=[\d.]+ (aug|no-aug)", name), name
    client = MlflowClient(f"sqlite:///{swept / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ui-check")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.info.run_name for run in runs) == sorted([*names, "study-ui"])


def test_a_trial_shows_its_confusion_matrix_and_metric_charts(ui_url: str, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get(ui_url)
    browser.click(expander_of("study-ui", browser))
    browser.click_link("trial-000")
    browser.click_text("Artifacts")
    browser.click_text("confusion_matrix.png")
    image = browser.until(  # the preview: the PNG itself, decoded by the browser
        lambda page: next(
            (
                img
                for img in page.find_elements(By.CSS_SELECTOR, "img[alt='confusion_matrix.png']")
                if page.execute_script("return arguments[0].naturalWidth", img) > 100
            ),
            None,
        )
    )
    assert image.is_displayed()
    assert browser.find_elements(By.XPATH, "//*[text()='curves.png']")
    assert browser.find_elements(By.XPATH, "//*[text()='misclassified.png']")
    browser.click_text("Model metrics")
    search = browser.until(  # charts render only when scrolled to: search for the one we want
        lambda page: next(
            iter(page.find_elements(By.CSS_SELECTOR, "input[placeholder*='Search metric']")), None
        )
    )
    search.send_keys("val_accuracy")
    browser.until(
        lambda page: (
            [
                plot
                for plot in page.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")
                if plot.is_displayed()
            ]
            and page.find_elements(By.XPATH, "//*[normalize-space(text())='val_accuracy']")
            and page.find_elements(By.XPATH, "//*[contains(text(), '(val_accuracy)')]")  # a legend
        )
    )
