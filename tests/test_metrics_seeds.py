import math

import pytest

from stpn.metrics.seeds import mean_and_spread


def test_mean_and_half_the_range():
    mean, spread = mean_and_spread([3.7, 7.4, 3.9])
    assert math.isclose(mean, 5.0)
    assert math.isclose(spread, 1.85)


def test_one_seed_has_no_spread_and_generators_are_read_once():
    assert mean_and_spread(x for x in [2.5]) == (2.5, 0.0)


def test_no_values_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        mean_and_spread([])
