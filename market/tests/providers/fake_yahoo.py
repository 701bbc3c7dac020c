"""A requests.Session that answers Yahoo Finance's endpoints from fixture files instead of the network.

Passed to yfinance through its `session=` seam, it lets the tests run the real yfinance code (cookie,
crumb, timezone lookup, chart parsing) offline. Chart answers are cut to the requested period1/period2
window, as Yahoo does, and a window without bars gets Yahoo's empty-chart shape.
"""

from __future__ import annotations

import copy
import json
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "yahoo"
CRUMB = "kX0dmHQ9c1Z"
RATE_LIMITED_BODY = "Edge: Too Many Requests"
DOWN_BODY = "<html><head><title>Yahoo</title></head><body>Will be right back...</body></html>"


def load_chart(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


class FakeYahooSession(requests.Session):
    """Yahoo Finance played from fixtures.

    `charts` maps (symbol, interval) to a fixture file. `window_outcomes` scripts the next answers to
    chart requests for a window (not the timezone lookups): an HTTP status (404: Yahoo's not-found JSON,
    429: its rate-limit text, 5xx: its "Will be right back" page), an exception to raise, or None to answer
    from the fixture as usual (to fail a later request only).
    `symbol_outcomes` scripts them for one symbol's requests alone (yfinance orders a multi-ticker download's
    requests as it likes). `down` makes every request fail as if the network were gone.
    """

    def __init__(self, charts: dict[tuple[str, str], str] | None = None):
        super().__init__()
        self.charts = {key: load_chart(name) for key, name in (charts or {}).items()}
        self.window_outcomes: list[int | Exception | None] = []
        self.symbol_outcomes: dict[str, list[int | Exception | None]] = {}
        self.down = False
        self.log: list[tuple[str, dict[str, Any]]] = []
        self.unexpected: list[str] = []

    def chart_windows(self) -> list[dict[str, Any]]:
        """The params of every chart request made for a window (period1/period2)."""
        return [params for url, params in self.log if "/v8/finance/chart/" in url and "period1" in params]

    def request(self, method: str, url: str, params: dict[str, Any] | None = None, **kwargs: Any):
        params = dict(params or {})
        self.log.append((url, params))
        parts = urlsplit(url)
        if self.down:
            raise requests.exceptions.ConnectionError(f"Failed to resolve '{parts.hostname}'")
        if parts.hostname == "fc.yahoo.com":
            expires = int(time.time()) + 365 * 86400
            self.cookies.set(
                "A3", "d=AQABBDlTI2kCEFake&S=AQAAAFake", domain=".yahoo.com", path="/", expires=expires
            )
            return self._answer(method, url, params, 404, "<html><body>Not Found</body></html>", "text/html")
        if parts.hostname == "guce.yahoo.com":
            # The consent flow of yfinance's second cookie strategy; outside the EU there is no form.
            return self._answer(method, url, params, 404, "<html><body>Not Found</body></html>", "text/html")
        if parts.path == "/v1/test/getcrumb":
            return self._answer(method, url, params, 200, CRUMB, "text/plain")
        if parts.path.startswith("/v8/finance/chart/"):
            return self._chart(method, url, params, unquote(parts.path.rsplit("/", 1)[1]))
        if parts.path.startswith("/v10/finance/quoteSummary/"):
            symbol = unquote(parts.path.rsplit("/", 1)[1])
            body = (FIXTURES / "quote_summary_not_found.json").read_text().replace("{symbol}", symbol)
            return self._answer(method, url, params, 404, body)
        self.unexpected.append(url)
        return self._answer(method, url, params, 404, "<html><body>Not Found</body></html>", "text/html")

    def _chart(self, method: str, url: str, params: dict[str, Any], symbol: str) -> requests.Response:
        script = self.symbol_outcomes.get(symbol) or self.window_outcomes
        outcome = script.pop(0) if "period1" in params and script else None
        if outcome is not None:
            if isinstance(outcome, Exception):
                raise outcome
            if outcome == 404:
                return self._answer(method, url, params, 404, (FIXTURES / "chart_not_found.json").read_text())
            body = RATE_LIMITED_BODY if outcome == 429 else DOWN_BODY
            return self._answer(method, url, params, outcome, body, "text/html")
        payload = self.charts.get((symbol, params.get("interval")))
        if payload is None and params.get("range") == "1d":
            # yfinance's timezone lookup: any chart of the symbol carries its exchange timezone.
            payload = next((chart for (known, _), chart in self.charts.items() if known == symbol), None)
        if payload is None:
            return self._answer(method, url, params, 404, (FIXTURES / "chart_not_found.json").read_text())
        if "period1" in params:
            payload = _window(payload, int(params["period1"]), int(params["period2"]))
        return self._answer(method, url, params, 200, json.dumps(payload, separators=(",", ":")))

    @staticmethod
    def _answer(
        method: str,
        url: str,
        params: dict[str, Any],
        status: int,
        body: str,
        content_type: str = "application/json;charset=utf-8",
    ) -> requests.Response:
        response = requests.Response()
        response.request = requests.Request(method, url, params=params).prepare()
        response.url = response.request.url
        response.status_code = status
        response.reason = HTTPStatus(status).phrase
        response.headers["Content-Type"] = content_type
        response.encoding = "utf-8"
        response._content = body.encode()
        return response


def _window(payload: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    """The chart cut to bars stamped in [start, end); Yahoo's shape when none are left."""
    payload = copy.deepcopy(payload)
    result = payload["chart"]["result"][0]
    keep = [i for i, stamp in enumerate(result.get("timestamp", [])) if start <= stamp < end]
    if not keep:
        had_adjclose = "adjclose" in result["indicators"]
        result.pop("timestamp", None)
        result.pop("events", None)
        result["indicators"] = {"quote": [{}], **({"adjclose": [{}]} if had_adjclose else {})}
        return payload
    result["timestamp"] = [result["timestamp"][i] for i in keep]
    quote = result["indicators"]["quote"][0]
    for key in quote:
        quote[key] = [quote[key][i] for i in keep]
    for adjusted in result["indicators"].get("adjclose", []):
        adjusted["adjclose"] = [adjusted["adjclose"][i] for i in keep]
    return payload
