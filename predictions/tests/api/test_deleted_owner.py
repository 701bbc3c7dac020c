"""A user's predictions are theirs alone, also once the user is deleted: they must not turn into the system's."""

import pytest

from accounts.tests.factories import UserFactory
from conftest import _client_for
from predictions.models import Prediction
from predictions.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


def test_a_deleted_users_predictions_are_not_shown_to_others_as_the_systems(frozen):
    owner, stranger = UserFactory(), UserFactory()
    system = PredictionFactory(predicted_price=110.0, realized_price=105.0, error=5.0)
    private = PredictionFactory(requested_by=owner, predicted_price=80.0, realized_price=100.5, error=-20.5)
    owner.delete()  # e.g. staff removing the account in admin

    client = _client_for(stranger)
    assert client.get(f"/api/predictions/id/{private.pk}").status_code == 404
    assert [row["id"] for row in client.get("/api/predictions/TCS").json()["results"]] == [system.pk]
    accuracy = client.get("/api/predictions/TCS/accuracy").json()
    assert (accuracy["total"], accuracy["mae"]) == (1, 5.0)  # not the deleted user's miss of 20.5
    assert not Prediction.objects.filter(pk=private.pk, requested_by__isnull=True).exists()
