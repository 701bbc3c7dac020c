/* The instrument chart of the admin: candles and volume, signals as markers (reasoning on hover), predictions
   with their 80% interval and realized close, support/resistance, and the backtest's equity against buy-and-hold.
   Data: the staff-only JSON endpoint beside this page, asked with the page's own query string. */
"use strict";
(function () {
  const LC = window.LightweightCharts;
  const config = JSON.parse(document.getElementById("chart-config").textContent);
  const status = document.getElementById("chart-status");
  const priceBox = document.getElementById("price-chart");
  const tooltip = document.getElementById("chart-tooltip");
  const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  const layout = {
    layout: { textColor: dark ? "#ddd" : "#333", background: { type: "solid", color: dark ? "#121212" : "#fff" } },
    grid: { vertLines: { color: dark ? "#222" : "#eee" }, horzLines: { color: dark ? "#222" : "#eee" } },
    autoSize: true,
  };

  function percent(value) {
    return value === null || value === undefined ? "–" : (value * 100).toFixed(1) + "%";
  }

  function drawPrice(data) {
    // Times come as the exchange's wall clock (each at its own UTC offset), which the library draws as given.
    const intraday = !["1D", "1W"].includes(data.timeframe);
    const chart = LC.createChart(priceBox, { ...layout, timeScale: { timeVisible: intraday } });
    const candles = chart.addSeries(LC.CandlestickSeries, {
      upColor: "#26a69a", downColor: "#ef5350", borderVisible: false,
      wickUpColor: "#26a69a", wickDownColor: "#ef5350",
    });
    // A bar still forming (fetched before its close: `final` false) is drawn grey, never as a finished bar.
    const forming = { color: "#9e9e9e", borderColor: "#9e9e9e", wickColor: "#9e9e9e" };
    candles.setData(data.candles.map(({ volume, final, ...ohlc }) => (final ? ohlc : { ...ohlc, ...forming })));
    const volume = chart.addSeries(LC.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "" });
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    volume.setData(data.candles.map((c) => ({
      time: c.time, value: c.volume, color: c.close >= c.open ? "rgba(38,166,154,.45)" : "rgba(239,83,80,.45)",
    })));

    const markers = data.signals.map((s) => ({
      time: s.time,
      position: s.type === "BUY" ? "belowBar" : "aboveBar",
      shape: s.type === "BUY" ? "arrowUp" : "arrowDown",
      color: s.type === "BUY" ? "#1e88e5" : "#e91e63",
      text: s.type,
    }));
    LC.createSeriesMarkers(candles, markers);

    const forecasts = data.predictions;
    if (forecasts.length) {
      const line = (color, style, extra) => chart.addSeries(LC.LineSeries, {
        color, lineWidth: 1, lineStyle: style, lastValueVisible: false, priceLineVisible: false, ...extra,
      });
      line("#8e24aa", LC.LineStyle.Solid, { pointMarkersVisible: true, title: "predicted" })
        .setData(forecasts.map((p) => ({ time: p.time, value: p.predicted })));
      line("#ba68c8", LC.LineStyle.Dashed).setData(forecasts.map((p) => ({ time: p.time, value: p.upper })));
      line("#ba68c8", LC.LineStyle.Dashed).setData(forecasts.map((p) => ({ time: p.time, value: p.lower })));
      const realized = forecasts.filter((p) => p.realized !== null);
      if (realized.length) {
        line("#fb8c00", LC.LineStyle.Solid, { lineVisible: false, pointMarkersVisible: true, title: "realized" })
          .setData(realized.map((p) => ({ time: p.time, value: p.realized })));
      }
    }
    if (data.levels.support !== null) {
      candles.createPriceLine({ price: data.levels.support, color: "#43a047", lineWidth: 1,
        lineStyle: LC.LineStyle.Dotted, axisLabelVisible: true, title: "support" });
    }
    if (data.levels.resistance !== null) {
      candles.createPriceLine({ price: data.levels.resistance, color: "#e53935", lineWidth: 1,
        lineStyle: LC.LineStyle.Dotted, axisLabelVisible: true, title: "resistance" });
    }
    chart.timeScale().fitContent();

    const signalAt = new Map(data.signals.map((s) => [s.time, s]));
    const forecastAt = new Map(forecasts.map((p) => [p.time, p]));
    chart.subscribeCrosshairMove((param) => {
      const signal = param.time !== undefined ? signalAt.get(param.time) : undefined;
      const forecast = param.time !== undefined ? forecastAt.get(param.time) : undefined;
      if (!param.point || (!signal && !forecast)) {
        tooltip.style.display = "none";
        return;
      }
      const lines = [];
      if (signal) {
        lines.push(`${signal.type} at ${signal.price.toFixed(2)} (strength ${signal.strength.toFixed(2)})`, signal.reasoning);
      }
      if (forecast) {
        lines.push(`${forecast.model} h${forecast.horizon}: ${forecast.predicted.toFixed(2)} ` +
          `[${forecast.lower.toFixed(2)} – ${forecast.upper.toFixed(2)}]` +
          (forecast.realized !== null ? `, realized ${forecast.realized.toFixed(2)}` : ""));
      }
      tooltip.textContent = lines.join("\n");
      tooltip.style.display = "block";
      tooltip.style.left = Math.min(param.point.x + 12, priceBox.clientWidth - 370) + "px";
      tooltip.style.top = param.point.y + 12 + "px";
    });
    priceBox.dataset.candles = String(data.candles.length);
    priceBox.dataset.markers = String(markers.length);
    priceBox.dataset.predictions = String(forecasts.length);
  }

  function drawEquity(data) {
    const box = document.getElementById("equity-chart");
    const summary = document.getElementById("backtest-summary");
    const backtest = data.backtest;
    if (backtest.error) {
      summary.textContent = backtest.error;
      box.parentElement.style.display = "none";
      return;
    }
    const s = backtest.summary;
    const stale = backtest.stale
      ? "Stale: the market data provider failed, so this replays the candles stored, not the latest. " : "";
    summary.textContent = stale + `Rules ${percent(s.total_return)} against buy-and-hold ${percent(s.buy_and_hold_return)}; ` +
      `max drawdown ${percent(s.max_drawdown)}, win rate ${percent(s.win_rate)}, exposure ${percent(s.exposure)}, ` +
      `Sharpe ${s.sharpe === null ? "–" : s.sharpe.toFixed(2)}.` +
      (backtest.warnings.length ? " " + backtest.warnings.join(" ") : "");
    const chart = LC.createChart(box, layout);
    chart.addSeries(LC.LineSeries, { color: "#1e88e5", lineWidth: 2, title: "signal rules" }).setData(backtest.equity);
    chart.addSeries(LC.LineSeries, { color: "#9e9e9e", lineWidth: 1, title: "buy & hold" }).setData(backtest.buy_and_hold);
    chart.timeScale().fitContent();
    box.dataset.points = String(backtest.equity.length);
  }

  async function load() {
    const response = await fetch(config.data_url + window.location.search, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) {
      status.textContent = `Error ${response.status}: ${body.error ? body.error.message + " " + JSON.stringify(body.error.details || "") : response.statusText}`;
      priceBox.dataset.ready = "error";
      return;
    }
    const partial = body.candles.filter((c) => !c.final).length;
    status.textContent = `${body.symbol} ${body.timeframe}: ${body.candles.length} candles` +
      (partial ? ` (${partial} still forming, in grey)` : "") + `, ${body.signals.length} signals, ` +
      `${body.predictions.length} predictions; source ${body.source || "–"}${body.stale ? " (stale)" : ""}. Times in exchange time (${body.time_zone}).`;
    if (body.candles.length) {
      drawPrice(body);
      drawEquity(body);
    }
    priceBox.dataset.ready = "1";
  }

  load().catch((error) => {
    status.textContent = "Could not draw the chart: " + error;
    priceBox.dataset.ready = "error";
    throw error;
  });
})();
