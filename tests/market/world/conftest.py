"""Fixtures shared by the customs tests: the world file and a duty calculator over it."""

import pytest

from market.world.customs import DutyCalculator
from market.world.world import load_world


@pytest.fixture(scope="module")
def world():
    return load_world()


@pytest.fixture(scope="module")
def calc(world):
    return DutyCalculator(world)
