"""When the stale-data tests of forecasts and signals store candles and read them again (the
`stored_then_provider_down` fixture is in the root conftest.py)."""

from datetime import UTC, datetime

# Wednesday 2026-06-03 17:00 IST: the day's bar has closed and is stored.
STORED = datetime(2026, 6, 3, 11, 30, tzinfo=UTC)
# Monday 2026-06-08 17:00 IST: Thursday's, Friday's and Monday's sessions have closed since.
LATER = datetime(2026, 6, 8, 11, 30, tzinfo=UTC)
