from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_a_symbol_that_fails_makes_train_models_fail(frozen):
    """It wrote the error and exited 0, so a script never learnt that nothing was trained."""
    err = StringIO()
    with pytest.raises(CommandError, match="1 of 1 symbols failed"):
        call_command(
            "train_models", "NOSUCHCO", "--models", "svr", stdout=StringIO(), stderr=err, verbosity=0
        )
    assert "NOSUCHCO.NS: No market data" in err.getvalue()


@pytest.mark.parametrize("horizon", ["0", "-1", "31"])
def test_train_models_refuses_a_horizon_out_of_range(horizon):
    """`--horizon 0` crashed with a ValueError traceback after the progress bar had started."""
    from predictions.models import TrainedModel

    with pytest.raises(CommandError, match=f"argument --horizon: {horizon} is out of range: from 1 to 30"):
        call_command("train_models", "TCS", "--horizon", horizon, "--models", "svr", verbosity=0)
    assert not TrainedModel.objects.exists()


@pytest.mark.parametrize("models", ["", ",", " , "])
def test_train_models_refuses_an_empty_model_list(models):
    """`--models ""` (an unset shell variable) trained every default model, the LSTM included: work never asked."""
    from predictions.models import TrainedModel

    with pytest.raises(CommandError, match="--models names no model"):
        call_command("train_models", "TCS", "--models", models, verbosity=0)
    assert not TrainedModel.objects.exists()
