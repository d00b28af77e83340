"""How results over several training seeds are summarised everywhere in the project: the mean
and half the max–min range (the ``mean ± spread`` of every multi-seed table)."""
from __future__ import annotations

import statistics
from typing import Iterable


def mean_and_spread(values: Iterable[float]) -> tuple[float, float]:
    """``values`` (one per seed, at least one) → ``(mean, (max - min) / 2)``.

    Half the range rather than a standard deviation: with two or three seeds it is what the
    tables can honestly show (every seed lies within mean ± 2·spread), and it needs no
    assumption about the distribution."""
    values = list(values)
    if not values:
        raise ValueError("mean_and_spread needs at least one value")
    return statistics.fmean(values), (max(values) - min(values)) / 2
