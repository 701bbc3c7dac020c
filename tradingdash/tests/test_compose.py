"""docker-compose.yml cannot run here (no Docker engine); these pin the properties operators rely on."""

from pathlib import Path

import yaml
from django.conf import settings

COMPOSE = yaml.safe_load((Path(settings.BASE_DIR) / "docker-compose.yml").read_text())


def test_redis_persists_the_broker_queue_across_restarts():
    redis = COMPOSE["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert redis["volumes"][0].split(":")[0] in COMPOSE["volumes"]


def test_exactly_one_beat():
    assert COMPOSE["services"]["beat"]["deploy"]["replicas"] == 1
