"""Headless Chromium for UI tests, started offline-safe, with waits that read like the steps."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# This machine has no internet: every Chromium feature that phones home is off, or Chromium
# spends its time on refused connections (background networking, component updates, sync).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=2560,1200",  # wide: the runs grid renders only visible columns
)


def find_chromium() -> tuple[str, str] | None:
    """Paths of Chromium and its ChromeDriver (Debian's packages), or None."""
    browser = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    driver = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    driver = driver or "/usr/bin/chromedriver"
    if Path(browser).is_file() and Path(driver).is_file():
        return browser, driver
    return None


class Browser:
    """A Selenium driver with the few waits the UI tests need.

    Args:
        binary: Chromium's executable.
        driver: ChromeDriver's executable (never Selenium Manager: it would download one).
        wait: Seconds any wait may take.
    """

    def __init__(self, binary: str, driver: str, wait: float = 60) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = binary
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}"):
            options.add_argument(flag)
        self.driver = webdriver.Chrome(service=Service(driver), options=options)
        self.wait = wait

    def get(self, url: str) -> None:
        self.driver.get(url)

    def find_elements(self, by: str, value: str) -> list[Any]:
        return list(self.driver.find_elements(by, value))

    def until(self, condition: Callable[[Any], Any]) -> Any:
        """Waits until ``condition(driver)`` is truthy and returns its value.

        The UI re-renders as data arrives: an element found a moment ago may be gone, which
        only means "look again".
        """
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        wait = WebDriverWait(
            self.driver, self.wait, ignored_exceptions=(StaleElementReferenceException,)
        )
        return wait.until(condition)

    def click(self, find: Callable[[], Any]) -> None:
        """Clicks what ``find()`` returns, finding it again if it was re-rendered meanwhile."""
        from selenium.common.exceptions import ElementClickInterceptedException

        def clicked(page: Any) -> bool:
            element = find()
            try:
                element.click()
            except ElementClickInterceptedException:
                return False
            return True

        self.until(clicked)

    def click_link(self, starting: str) -> None:
        self.click(lambda: self.until_link(starting))

    def click_text(self, text: str) -> None:
        self.click(lambda: self.until_text(text))

    def until_link(self, starting: str) -> Any:
        """The first link whose text starts with ``starting``, once it is there."""
        from selenium.webdriver.common.by import By

        xpath = f"//a[starts-with(normalize-space(.), '{starting}')]"
        return self.until(lambda page: next(iter(page.find_elements(By.XPATH, xpath)), None))

    def until_text(self, text: str) -> Any:
        """The first visible element whose own text is exactly ``text``."""
        from selenium.webdriver.common.by import By

        xpath = f"//*[normalize-space(text())='{text}']"
        return self.until(
            lambda page: next(
                (e for e in page.find_elements(By.XPATH, xpath) if e.is_displayed()), None
            )
        )

    def save_evidence(self, folder: Path, name: str) -> list[Path]:
        """A screenshot and the page's HTML, for a failed test."""
        folder.mkdir(parents=True, exist_ok=True)
        shot, page = folder / f"{name}.png", folder / f"{name}.html"
        self.driver.save_screenshot(str(shot))
        page.write_text(self.driver.page_source, encoding="utf-8")
        return [shot, page]

    def quit(self) -> None:
        self.driver.quit()
        self._profile.cleanup()
