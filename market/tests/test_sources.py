import pytest

from market import sources
from market.providers.base import Provider
from market.tests.factories import FrameProvider


def frame_provider() -> Provider:
    return FrameProvider()


def not_a_provider():
    return object()


def test_provider_can_be_named_by_dotted_path(settings):
    provider = sources._build("market.tests.test_sources:frame_provider")
    assert isinstance(provider, FrameProvider)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("market.tests.test_sources:missing", ValueError),
        ("market.tests.test_sources:not_a_provider", TypeError),
        ("no_such_module_xyz:factory", ModuleNotFoundError),
    ],
)
def test_bad_provider_paths_fail_loudly(path, error):
    with pytest.raises(error):
        sources._build(path)


def test_unknown_provider_name_is_refused():
    with pytest.raises(ValueError, match="synthetic"):
        sources._build("bloomberg")
