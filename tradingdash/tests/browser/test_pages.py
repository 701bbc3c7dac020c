"""The pages people open, in a real headless Chromium: the API docs and the admin's chart page, first on the
in-process live server, then on gunicorn with DEBUG off (WhiteNoise, hashed static files)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from accounts.tests.factories import UserFactory
from charts.tests.factories import seed_chart
from tradingdash.tests.browser.conftest import admin_login, javascript_errors, requires_chromium, wait

pytestmark = [requires_chromium, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-browser-passphrase-42"


def _staff():
    return UserFactory(username="chartstaff", is_staff=True, is_superuser=True, password=PASSWORD)


def _swagger_operations(browser, base_url: str) -> int:
    browser.get(f"{base_url}/docs")
    wait(browser).until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, ".opblock")) > 10)
    summaries = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert "/api/market/historical/{symbol}" in summaries
    return len(summaries)


def _chart(browser, base_url: str) -> dict:
    browser.get(f"{base_url}/admin/charts/TCS.NS/?timeframe=1D&limit=400")
    box = wait(browser).until(lambda driver: driver.find_element(By.ID, "price-chart"))
    wait(browser).until(lambda driver: box.get_attribute("data-ready"))
    assert box.get_attribute("data-ready") == "1", browser.find_element(By.ID, "chart-status").text
    # The library draws on canvases; a drawn one has pixels that are not all one colour.
    drawn = browser.execute_script(
        """
        return [...document.querySelectorAll('#price-chart canvas')].some((canvas) => {
          const context = canvas.getContext('2d');
          if (!context || !canvas.width || !canvas.height) return false;
          const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
          for (let i = 4; i < pixels.length; i += 4) {
            if (pixels[i] !== pixels[0] || pixels[i + 1] !== pixels[1] || pixels[i + 2] !== pixels[2]) return true;
          }
          return false;
        });
        """
    )
    assert drawn
    return {
        "candles": int(box.get_attribute("data-candles")),
        "markers": int(box.get_attribute("data-markers")),
        "predictions": int(box.get_attribute("data-predictions")),
        "equity": int(browser.find_element(By.ID, "equity-chart").get_attribute("data-points") or 0),
    }


def test_swagger_ui_lists_the_operations(live_server, browser, screenshot):
    assert _swagger_operations(browser, live_server.url) > 15
    screenshot("docs")
    assert javascript_errors(browser) == []


def test_redoc_renders_the_api(live_server, browser, screenshot):
    browser.get(f"{live_server.url}/redoc")
    wait(browser).until(lambda driver: "tradingdash API" in driver.find_element(By.TAG_NAME, "body").text)
    wait(browser).until(lambda driver: "/api/market/historical/{symbol}" in driver.page_source)
    screenshot("redoc")
    # ReDoc's bundle always links the "API docs by Redocly" logo from its CDN (hidden when it fails to load);
    # every script, style and font of the page is ours.
    errors = [e for e in javascript_errors(browser) if "cdn.redoc.ly/redoc/logo-mini.svg" not in e]
    assert errors == []


def test_admin_chart_draws_candles_markers_and_equity(live_server, browser, screenshot):
    _staff()
    seed_chart()
    admin_login(browser, live_server.url, "chartstaff", PASSWORD)
    drawn = _chart(browser, live_server.url)
    assert drawn == {"candles": 400, "markers": 2, "predictions": 2, "equity": drawn["equity"]}
    assert drawn["equity"] > 0
    screenshot("admin-chart")
    assert javascript_errors(browser) == []


def test_docs_and_admin_chart_under_gunicorn_with_debug_off(live_production, browser, screenshot):
    _staff()
    seed_chart()
    assert _swagger_operations(browser, live_production.base_url) > 15
    assert javascript_errors(browser) == []
    admin_login(browser, live_production.base_url, "chartstaff", PASSWORD)
    stylesheets = browser.execute_script(
        "return [...document.styleSheets].map((sheet) => sheet.href).filter(Boolean)"
    )
    assert any("/static/admin/css/base." in href for href in stylesheets), stylesheets
    assert _chart(browser, live_production.base_url)["markers"] == 2
    screenshot("admin-chart-gunicorn", publish=False)
    assert javascript_errors(browser) == []
