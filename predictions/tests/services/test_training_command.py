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
