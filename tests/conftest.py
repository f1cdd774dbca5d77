import os

import pytest
from hypothesis import HealthCheck, settings

# Deterministic property tests: same examples on every run and in CI.
settings.register_profile("lutc", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("lutc")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def repo_root() -> str:
    return REPO
