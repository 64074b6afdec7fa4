"""The stub world every Kubernetes script test starts from (tests/helpers/stub_tools.py)."""

import pytest

from tests.helpers.stub_tools import StubWorld


@pytest.fixture
def world(tmp_path):
    return StubWorld(tmp_path)
