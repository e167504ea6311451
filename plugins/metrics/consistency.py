"""Relations between a cell's scores that the metrics' own formulas guarantee: what
``Metric.inconsistencies`` checks a results file's numbers against."""

from __future__ import annotations

import math
from typing import Mapping

# Scores read back from a store or a results file are compared with this much slack.
SLACK = 1e-9

Values = Mapping[str, "float | None"]


def score(values: Values, key: str) -> float | None:
    """``values[key]``, or None where it is missing or does not apply (None in a file, NaN in a store)."""
    value = values.get(key)
    return None if value is None or math.isnan(value) else float(value)


def recalls(values: Values, prefix: str) -> list[tuple[int, float]]:
    """``(K, value)`` of the keys ``{prefix}{K}`` of ``values`` that apply, by K."""
    return sorted((int(key[len(prefix):]), score(values, key)) for key in values
                  if key.startswith(prefix) and key[len(prefix):].isdigit() and score(values, key) is not None)


def recall_order_problems(values: Values, prefix: str) -> list[str]:
    """Recall@K that falls as K grows, among the keys ``{prefix}{K}`` of ``values``."""
    found = recalls(values, prefix)
    return [f"{prefix}{high} = {high_value:.6g} is below {prefix}{low} = {low_value:.6g}, but recall cannot fall "
            f"as K grows" for (low, low_value), (high, high_value) in zip(found, found[1:])
            if high_value < low_value - SLACK]


def mean_problems(values: Values, key: str, parts: tuple[str, str]) -> list[str]:
    """``key`` that is not the mean of ``parts`` (where all three are present)."""
    found = [score(values, k) for k in (key, *parts)]
    if None in found:
        return []
    mean = (found[1] + found[2]) / 2
    if abs(found[0] - mean) <= SLACK:
        return []
    return [f"{key} = {found[0]:.6g} is not the mean of {parts[0]} and {parts[1]} ({mean:.6g})"]


def at_least(values: Values, low: str, high: str, why: str) -> list[str]:
    """``high`` below ``low`` (where both are present)."""
    low_value, high_value = score(values, low), score(values, high)
    if low_value is None or high_value is None or high_value >= low_value - SLACK:
        return []
    return [f"{high} = {high_value:.6g} is below {low} = {low_value:.6g}, but {why}"]


def median_problems(values: Values, direction: str, both_ways: bool) -> list[str]:
    """A median rank on the wrong side of a K where more (or, ``both_ways``, fewer) than half the
    queries hit within K: more than half within K puts the median at most K, fewer puts it above."""
    median = score(values, f"{direction}_median_rank")
    if median is None:
        return []
    problems = []
    for k, recall in recalls(values, f"{direction}_R@"):
        key = f"{direction}_R@{k}"
        if recall > 0.5 + SLACK and median > k:
            problems.append(f"{direction}_median_rank = {median:g} is above {k}, but {key} = {recall:.6g} puts "
                            f"more than half the queries within {k}")
        if both_ways and recall < 0.5 - SLACK and median <= k:
            problems.append(f"{direction}_median_rank = {median:g} is at most {k}, but {key} = {recall:.6g} puts "
                            f"fewer than half the queries within {k}")
    return problems
