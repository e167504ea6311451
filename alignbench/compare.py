"""``alignbench compare A B``: which cells moved between two runs (a results store or a leaderboard
JSON each), by more than their seeds' spread.

A cell here is (dataset, setting, aligner, anchors): the mean over its seeds. A change within the
larger of the two sides' standard deviations over seeds is what re-drawing the anchors does anyway
and is not reported; a cell with a single seed (no spread) is reported on any change above the
JSON files' rounding. A change of the seeds' statuses (a cell that now fails, or is now n/a) is a
change whatever the numbers, and so is a cell found on one side only.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import AlignbenchError, InvalidParameterError
from .submissions import finite_number

ROUNDING = 1e-6  # leaderboard JSON keeps 6 decimals: a store and its own JSON differ by this much
CELL_FIELDS = ("aligner", "anchors", "seed", "setting", "status")

CellKey = tuple[str, str, str, int]  # dataset, setting id, aligner label, anchors


@dataclass
class CellValues:
    """One cell's seeds: the status of each, and per metric the values of the finished ones."""
    statuses: list[str] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Move:
    cell: CellKey
    metric: str
    before: tuple[float, float]  # mean, std over seeds
    after: tuple[float, float]

    @property
    def change(self) -> float:
        return self.after[0] - self.before[0]


@dataclass(frozen=True)
class Comparison:
    moved: list[Move]
    only_before: list[CellKey]
    only_after: list[CellKey]
    compared: int  # cells present on both sides
    status_changed: list[tuple[CellKey, list[str], list[str]]]  # cell, seeds' statuses before, after

    @property
    def changed(self) -> bool:
        return bool(self.moved or self.status_changed or self.only_before or self.only_after)


def load_values(path: Path) -> dict[CellKey, CellValues]:
    """Per cell: its seeds' statuses and, per metric, the values of its finished seeds."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise AlignbenchError(f"{path} {what}; pass a results store (.sqlite) or a leaderboard JSON.")
    if path.suffix == ".json":
        return _from_json(path)
    with open(path, "rb") as f:
        is_sqlite = f.read(16) == b"SQLite format 3\x00"
    if not is_sqlite:
        raise AlignbenchError(f"{path} is neither a results store (SQLite) nor a .json leaderboard; pass one of those.")
    return _from_store(path)


class _NotFinite(ValueError):
    """NaN or an infinity in a leaderboard JSON: compared, it would hide any change."""


def _from_json(path: Path) -> dict[CellKey, CellValues]:
    out: dict[CellKey, CellValues] = {}
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))  # an infinite parameter is a setting's own
        cells, dataset = payload["cells"], payload["dataset"]
        if not isinstance(dataset, str):
            raise TypeError("dataset is not a string")
        for cell in cells:
            if not all(isinstance(cell[name], str) for name in ("setting", "aligner", "status")):
                raise TypeError("setting, aligner or status is not a string")  # cells are sorted by them
            key = (dataset, cell["setting"], cell["aligner"], int(cell["anchors"]))
            values = out.setdefault(key, CellValues())
            values.statuses.append(cell["status"])
            if cell["status"] == "ok":
                for name, value in cell.items():
                    if name not in CELL_FIELDS and value is not None:
                        number = finite_number(value)
                        if number is None:  # NaN would compare unequal to nothing and hide a change
                            raise _NotFinite(f"has {name} = {str(value)[:20]} in a cell of {cell['aligner']} at "
                                             f"{cell['anchors']} anchors, not a finite number")
                        values.metrics.setdefault(name, []).append(number)
    except _NotFinite as exc:
        raise AlignbenchError(f"{path} {exc}; a leaderboard JSON has null where a metric does not apply: pass the "
                              f"file `alignbench leaderboard` wrote, or a results store.") from None
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
        raise AlignbenchError(f"{path} is not a leaderboard JSON (leaderboards/<dataset>.json: dataset, settings, "
                              f"cells, each cell with setting, aligner, anchors, status and numbers); pass one of "
                              f"those or a results store.") from None
    return out


def _from_store(path: Path) -> dict[CellKey, CellValues]:
    from .leaderboard import aligner_config, aligner_labels, boards
    from .store import ResultStore

    try:
        with ResultStore(path) as store:
            records = store.records()
    except sqlite3.Error as exc:  # ResultStore reports its own problems as StoreError
        raise AlignbenchError(f"cannot read {path} ({exc}); pass a results store.") from None
    out: dict[CellKey, CellValues] = {}
    for board in boards(records):
        labels = aligner_labels(board)
        for record in board.records:
            values = out.setdefault((board.dataset, board.setting_id, labels[aligner_config(record)], record.anchors),
                                    CellValues())
            values.statuses.append(record.status)
            if record.status == "ok":
                for name, value in record.metrics.items():
                    if value is not None and not (isinstance(value, float) and math.isnan(value)):
                        values.metrics.setdefault(name, []).append(float(value))
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def compare(before: dict[CellKey, CellValues], after: dict[CellKey, CellValues],
            metrics: list[str] | None = None) -> Comparison:
    """Cells on both sides whose mean moved by more than max(std before, std after) + rounding, or
    whose seeds' statuses changed. A metric in ``metrics`` that no cell of either side has is an error
    (a typo would otherwise compare nothing, and a CI check pass)."""
    common = sorted(set(before) & set(after))
    present = {name for side in (before, after) for values in side.values() for name in values.metrics}
    if unknown := [m for m in metrics or () if m not in present]:
        raise InvalidParameterError(f"--metric {', '.join(unknown)}: no cell on either side has it; the metrics are "
                                    f"{', '.join(sorted(present))}.")
    moved, status_changed = [], []
    for cell in common:
        statuses = sorted(before[cell].statuses), sorted(after[cell].statuses)
        if statuses[0] != statuses[1]:
            status_changed.append((cell, *statuses))
        names = sorted(set(before[cell].metrics) & set(after[cell].metrics))
        for name in names if metrics is None else [m for m in metrics if m in names]:
            b, a = mean_std(before[cell].metrics[name]), mean_std(after[cell].metrics[name])
            if abs(a[0] - b[0]) > max(b[1], a[1]) + ROUNDING * max(1.0, abs(b[0])):
                moved.append(Move(cell, name, b, a))
    return Comparison(moved, sorted(set(before) - set(after)), sorted(set(after) - set(before)), len(common),
                      status_changed)
