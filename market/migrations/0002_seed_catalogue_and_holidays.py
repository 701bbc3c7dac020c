"""Seed the default watchlist and NSE's published 2026 trading holidays (market/data/nse_holidays_2026.csv).

NSE had not published its 2027 list when this was written; load it with `manage.py load_holidays FILE`."""

import csv
from datetime import date
from pathlib import Path

from django.db import migrations

INSTRUMENTS = [
    ("RELIANCE.NS", "Reliance Industries", "equity"),
    ("TCS.NS", "Tata Consultancy Services", "equity"),
    ("INFY.NS", "Infosys", "equity"),
    ("HDFCBANK.NS", "HDFC Bank", "equity"),
    ("ICICIBANK.NS", "ICICI Bank", "equity"),
    ("SBIN.NS", "State Bank of India", "equity"),
    ("BHARTIARTL.NS", "Bharti Airtel", "equity"),
    ("^NSEI", "NIFTY 50", "index"),
    ("^BSESN", "S&P BSE SENSEX", "index"),
]
HOLIDAYS_CSV = Path(__file__).resolve().parent.parent / "data" / "nse_holidays_2026.csv"


def seed(apps, schema_editor):
    Instrument = apps.get_model("market", "Instrument")
    MarketHoliday = apps.get_model("market", "MarketHoliday")
    for symbol, name, kind in INSTRUMENTS:
        exchange = "BSE" if symbol == "^BSESN" else "NSE"
        Instrument.objects.get_or_create(
            symbol=symbol, defaults={"name": name, "kind": kind, "exchange": exchange, "currency": "INR"}
        )
    with HOLIDAYS_CSV.open(newline="") as handle:
        for row in csv.DictReader(handle):
            MarketHoliday.objects.get_or_create(
                exchange="NSE", date=date.fromisoformat(row["date"]), defaults={"description": row["description"]}
            )


def unseed(apps, schema_editor):
    apps.get_model("market", "Instrument").objects.filter(symbol__in=[s for s, _, _ in INSTRUMENTS]).delete()
    apps.get_model("market", "MarketHoliday").objects.filter(exchange="NSE", date__year=2026).delete()


class Migration(migrations.Migration):
    dependencies = [("market", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
