"""Means and spreads over seeds of a Table's cells: the numbers the pages print (and the browser tests
recompute from the JSON files)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .sources import Table


@dataclass(frozen=True)
class Summary:
    """One metric of one row at one anchor level, over its finished seeds."""

    values: tuple[float, ...]
    status: str  # "ok", or "failed" / "n/a" when no seed has a number
    failed: int = 0  # seeds whose cell failed

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1), as leaderboard.headline_table; 0 for a single seed."""
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0


def summarize(table: Table, metric: str) -> dict[tuple[str, int], Summary]:
    """(row, anchors) -> Summary of ``metric`` over the cells whose status is ok and value is a number."""
    cells: dict[tuple[str, int], list] = {}
    for cell in table.cells:
        cells.setdefault((cell.row, cell.anchors), []).append(cell)
    out = {}
    for key, group in sorted(cells.items()):
        values = tuple(float(c.metrics[metric]) for c in sorted(group, key=lambda c: c.seed)
                       if c.status == "ok" and c.metrics.get(metric) is not None)
        failed = sum(c.status == "failed" for c in group)
        status = "ok" if values else "failed" if failed else "n/a"
        out[key] = Summary(values, status, failed)
    return out


def ranked_rows(table: Table, metric: str) -> list[str]:
    """Rows best first by their mean at the highest level where they have one (as the markdown
    leaderboards order them), then by name."""
    summaries = summarize(table, metric)
    best: dict[str, float] = {}
    for (row, _), summary in sorted(summaries.items(), key=lambda kv: kv[0][1]):
        if summary.mean is not None:
            best[row] = summary.mean
    return sorted(table.rows(), key=lambda row: (-best.get(row, -np.inf), row))


def percent_text(summary: Summary | None) -> str:
    """'12.3 ± 1.0' in percent (and '(2 of 3 seeds)' where others failed), as
    leaderboard.headline_table writes it, or the status."""
    if summary is None:
        return "n/a"
    if summary.mean is None:
        return summary.status
    spans = f" ({len(summary.values)} of {len(summary.values) + summary.failed} seeds)" if summary.failed else ""
    return f"{100 * summary.mean:.1f} ± {100 * summary.std:.1f}{spans}"


def plain_text(summary: Summary | None) -> str:
    """Four significant digits, for the all-metrics table (its units vary: rates, ranks, errors)."""
    if summary is None or summary.mean is None:
        return "n/a" if summary is None else summary.status
    return f"{summary.mean:.4g} ± {summary.std:.2g}"
