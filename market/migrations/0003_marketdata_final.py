"""MarketData.final: whether a bar had closed when it was fetched. Existing rows are marked final only where
that is provably true: the bar's end is no later than the time the row was last written (updated_at). The end is
computed with the exchange's regular close (never earlier than an early close, so never too early): intraday
bars end after their length, cut at that day's close; daily bars at the close; weekly bars at the close of the
week's Friday. Rows that cannot be proven final stay non-final until the next sync re-writes them."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import migrations, models

# Frozen copy of the exchanges known when this migration was written: time zone and regular close.
_EXCHANGE_CLOSE = {
    "NSE": ("Asia/Kolkata", time(15, 30)),
    "BSE": ("Asia/Kolkata", time(15, 30)),
    "NYSE": ("America/New_York", time(16, 0)),
    "NASDAQ": ("America/New_York", time(16, 0)),
    "LSE": ("Europe/London", time(16, 30)),
}
_SUFFIX = {".NS": "NSE", ".BO": "BSE", ".L": "LSE"}
_INDIAN_INDEX_PREFIXES = {"^NSE": "NSE", "^CNX": "NSE", "^INDIAVIX": "NSE", "^BSE": "BSE"}
_BAR = {"1m": "1 minute", "5m": "5 minutes", "15m": "15 minutes", "1H": "1 hour"}

_LOCAL_CLOSE = """(("timestamp" AT TIME ZONE %(tz)s)::date + %(close)s::time) AT TIME ZONE %(tz)s"""
_WEEK_CLOSE = """((date_trunc('week', "timestamp" AT TIME ZONE %(tz)s)::date + 4) + %(close)s::time)
                 AT TIME ZONE %(tz)s"""


def _exchange(symbol, catalogue):
    if symbol in catalogue:
        return catalogue[symbol]
    if symbol.startswith("^"):
        return next((ex for prefix, ex in _INDIAN_INDEX_PREFIXES.items() if symbol.startswith(prefix)), "NYSE")
    if "." not in symbol:
        return "NYSE"
    return _SUFFIX.get("." + symbol.rsplit(".", 1)[1], "NSE")


def _bar_end(timestamp, timeframe, tz, close):
    local = timestamp.astimezone(tz)
    if timeframe == "1W":
        friday = local.date() - timedelta(days=local.weekday()) + timedelta(days=4)
        return datetime.combine(friday, close, tz)
    day_close = datetime.combine(local.date(), close, tz)
    if timeframe == "1D":
        return day_close
    return min(timestamp + {"1m": 1, "5m": 5, "15m": 15, "1H": 60}[timeframe] * timedelta(minutes=1), day_close)


def mark_final(apps, schema_editor):
    MarketData = apps.get_model("market", "MarketData")
    Instrument = apps.get_model("market", "Instrument")
    catalogue = {s: e.strip().upper() for s, e in Instrument.objects.values_list("symbol", "exchange")}
    groups = MarketData.objects.values_list("symbol", "timeframe").distinct()
    connection = schema_editor.connection
    for symbol, timeframe in list(groups):
        tz_name, close = _EXCHANGE_CLOSE.get(_exchange(symbol, catalogue), _EXCHANGE_CLOSE["NSE"])
        if connection.vendor == "postgresql":
            if timeframe == "1W":
                end = _WEEK_CLOSE
            elif timeframe == "1D":
                end = _LOCAL_CLOSE
            else:
                end = f'LEAST("timestamp" + %(bar)s::interval, {_LOCAL_CLOSE})'
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE market_marketdata SET final = ({end}) <= updated_at "  # noqa: S608  # nosec B608
                    "WHERE symbol = %(symbol)s AND timeframe = %(timeframe)s",
                    {"tz": tz_name, "close": close, "bar": _BAR.get(timeframe), "symbol": symbol,
                     "timeframe": timeframe},
                )
            continue
        tz = ZoneInfo(tz_name)
        rows = MarketData.objects.filter(symbol=symbol, timeframe=timeframe)
        final_ids = [
            pk
            for pk, timestamp, updated_at in rows.values_list("pk", "timestamp", "updated_at")
            if _bar_end(timestamp, timeframe, tz, close) <= updated_at
        ]
        rows.filter(pk__in=final_ids).update(final=True)
        rows.exclude(pk__in=final_ids).update(final=False)


class Migration(migrations.Migration):
    dependencies = [
        ("market", "0002_seed_catalogue_and_holidays"),
    ]

    operations = [
        migrations.AddField(
            model_name="marketdata",
            name="final",
            field=models.BooleanField(
                default=False,
                help_text="The bar had closed (per its exchange calendar) when it was fetched; a partial bar is not final.",
            ),
        ),
        migrations.RunPython(mark_final, migrations.RunPython.noop, elidable=True),
    ]
