from datetime import UTC, datetime

import pytest
import time_machine

from predictions.loading import forecaster_cache_clear

# Wednesday 2026-06-03 17:00 IST: after the close, so the day's bar is closed.
NOW = datetime(2026, 6, 3, 11, 30, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield NOW


@pytest.fixture(autouse=True)
def _models_in_tmp_storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    forecaster_cache_clear()
    yield
    forecaster_cache_clear()
