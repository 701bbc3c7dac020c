"""A real headless Chromium (Debian's chromium + chromium-driver; .ci/run installs them) driven by Selenium.
Screenshots go to var/test-artifacts/browser/ (BROWSER_ARTIFACTS_DIR); with UPDATE_SCREENSHOTS=1 the README's
copies in docs/screenshots/ are refreshed too."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(
    os.environ.get("BROWSER_ARTIFACTS_DIR", settings.BASE_DIR / "var" / "test-artifacts" / "browser")
)

# The only reason these tests may not run; CI installs both (.ci/run).
requires_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="browser tests need Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver",
)


@pytest.fixture(scope="session")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1300"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def screenshot(browser):
    """Save the page as var/test-artifacts/browser/NAME.png (and docs/screenshots/NAME.png when asked)."""

    def take(name: str, *, publish: bool = True) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        browser.save_screenshot(str(path))
        if publish and os.environ.get("UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(path, settings.BASE_DIR / "docs" / "screenshots" / f"{name}.png")
        return path

    return take


def javascript_errors(browser) -> list[str]:
    """Severe console entries since the last call (uncaught errors, failed script or style loads); a missing
    /favicon.ico (the admin has none) is not one."""
    return [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "favicon.ico" not in entry["message"]
    ]


def admin_login(browser, base_url: str, username: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{base_url}/admin/login/")
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(browser).until(lambda driver: "/admin/login/" not in driver.current_url)


def wait(browser, seconds: float = 60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, seconds)
