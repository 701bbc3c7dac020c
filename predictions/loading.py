"""Fitted forecasters, loaded from their artifacts on first use inside the process that needs them (never
before a worker forks), verified against their SHA-256, and kept in a small LRU cache by model version."""

from __future__ import annotations

import threading
from collections import OrderedDict

from django.conf import settings

from predictions.ml.base import Forecaster
from predictions.ml.registry import load_verified
from predictions.models import TrainedModel

_lock = threading.Lock()
_cache: OrderedDict[tuple[int, str], Forecaster] = OrderedDict()


def forecaster_load(trained: TrainedModel) -> Forecaster:
    """The fitted forecaster of a TrainedModel; raises ArtifactIntegrityError if the file was altered."""
    key = (trained.pk, trained.artifact_sha256)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    with trained.artifact.open("rb") as handle:
        data = handle.read()
    forecaster = load_verified(trained.algorithm, data, trained.artifact_sha256)
    with _lock:
        _cache[key] = forecaster
        _cache.move_to_end(key)
        while len(_cache) > settings.MODEL_CACHE_SIZE:
            _cache.popitem(last=False)
    return forecaster


def forecaster_cache_clear() -> None:
    with _lock:
        _cache.clear()
