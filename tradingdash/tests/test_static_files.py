"""Static files in production: gunicorn with DEBUG off serves the admin's and the API docs' files through
WhiteNoise, under hashed names (cache-busting, cached for a year) and compressed; the docs use no CDN."""

import re

import pytest
import requests

pytestmark = pytest.mark.django_db

ASSET = re.compile(r"""(?:src|href)=["']([^"']+\.(?:js|css|png))["']""")


def _assets(html: str) -> list[str]:
    return ASSET.findall(html)


def test_admin_css_is_served_by_gunicorn_with_debug_off(live_production):
    response = requests.get(f"{live_production.base_url}/static/admin/css/base.css", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert "body" in response.text


def test_admin_links_hashed_files_that_are_cached_for_a_year_and_compressed(live_production):
    html = requests.get(f"{live_production.base_url}/admin/login/", timeout=10).text
    hashed = [url for url in _assets(html) if re.search(r"/static/admin/css/base\.[0-9a-f]{12}\.css$", url)]
    assert hashed, _assets(html)
    response = requests.get(
        f"{live_production.base_url}{hashed[0]}", headers={"Accept-Encoding": "gzip"}, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert "immutable" in response.headers["Cache-Control"]
    assert "max-age=315360000" in response.headers["Cache-Control"]
    assert (live_production.static_root / "staticfiles.json").is_file()


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_docs_load_every_asset_from_our_own_static_files(live_production, page):
    html = requests.get(f"{live_production.base_url}{page}", timeout=10).text
    assets = _assets(html)
    assert any("drf_spectacular_sidecar" in url for url in assets), assets
    assert "cdn.jsdelivr" not in html and "@latest" not in html
    for url in assets:
        assert url.startswith("/static/"), url
        assert requests.get(f"{live_production.base_url}{url}", timeout=10).status_code == 200, url


def test_unknown_static_file_is_404(live_production):
    assert (
        requests.get(f"{live_production.base_url}/static/admin/css/nope.css", timeout=10).status_code == 404
    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_no_outside_host(api_client, page):
    html = api_client.get(page).content.decode()
    assert not re.search(r"""(?:src|href)=["']https?://""", html), html
