"""What the site shows, gathered from its three sources into tables of cells.

- the leaderboard JSON files (``leaderboards/<dataset>.json``): every published number comes from them;
- a results store, when given: provenance (cell keys, environment, aligner parameters) for the cells
  of the JSON files that it holds with the same numbers; it adds no numbers of its own, so that the
  site and the committed tables cannot disagree;
- validated submission files (alignbench.submissions): rows of their own, marked with their producer.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import AlignbenchError
from ..leaderboard import aligner_config, aligner_labels, boards, split_sizes
from ..registry import NAME_PATTERN
from ..store import CellRecord
from ..submissions import Submission, finite_number, is_json, setting_problem, valid_split_sizes

CELL_FIELDS = ("aligner", "anchors", "seed", "setting", "status")
# JSON keeps 6 decimals (leaderboard.write_leaderboards): a store's full-precision number agrees with it
# when it rounds to the same value.
AGREE = 1e-6
# A setting's id: the start of its hex digest (leaderboard.Board.setting_id). Ids and dataset names become
# file names and page text: anything else in a leaderboard JSON is a hand edit, and is refused.
SETTING_ID = re.compile(r"[0-9a-f]{1,64}")


@dataclass(frozen=True)
class Cell:
    """One sweep cell as the site shows it."""

    row: str                 # the table row: the aligner's label, plus the producer for a submitted row
    aligner: str             # the aligner's label (name, plus parameters where one name ran with several)
    anchors: int
    seed: int
    status: str
    metrics: dict[str, float | None]
    origin: str = ""         # "" for the local leaderboards, the file name for a submission
    producer: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)  # key, environment, aligner config; {} if unknown
    fitted: dict[str, Any] = field(default_factory=dict)      # what the cell's fit chose (its record's fitted)


@dataclass
class Table:
    """One dataset under one setting (leaderboard.Board's grouping), local and submitted cells together."""

    dataset: str
    setting_id: str
    setting: dict
    cells: list[Cell]
    split_sizes: list[dict] = field(default_factory=list)  # as leaderboard.split_sizes: none when unknown

    def rows(self) -> list[str]:
        return sorted({c.row for c in self.cells})

    def levels(self) -> list[int]:
        return sorted({c.anchors for c in self.cells})

    def seeds(self) -> list[int]:
        return sorted({c.seed for c in self.cells})

    def metric_names(self) -> list[str]:
        return sorted({name for c in self.cells for name in c.metrics})


def local_tables(directory: Path) -> list[Table]:
    """Tables of ``directory/<dataset>.json`` files (robustness files are read by robustness())."""
    tables = []
    for path in sorted(directory.glob("*.json")):
        try:
            tables += _tables_of(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OverflowError) as exc:
            raise AlignbenchError(f"{path} is not a leaderboard JSON ({type(exc).__name__}: {exc}); write it again "
                                  f"with `alignbench leaderboard`, or move it out of the folder.") from None
    return tables


def _tables_of(payload: Any) -> list[Table]:
    """The tables of one parsed leaderboard JSON (none for robustness payloads and anything else)."""
    if not isinstance(payload, dict) or "cells" not in payload or "settings" not in payload:
        return []
    dataset = payload["dataset"]
    if not isinstance(dataset, str) or not NAME_PATTERN.fullmatch(dataset):
        raise ValueError(f"dataset {str(dataset)[:60]!r} is not a dataset name ({NAME_PATTERN.pattern})")
    fitted = {(f["setting"], f["aligner"], int(f["anchors"]), int(f["seed"])): f["fitted"]
              for f in payload.get("fitted", [])}
    sizes = payload.get("split_sizes", {})
    if not isinstance(sizes, dict):
        raise ValueError("split_sizes is not an object of setting ids")
    tables = []
    for setting_id, setting in sorted(payload["settings"].items()):
        if not SETTING_ID.fullmatch(setting_id):
            raise ValueError(f"setting id {setting_id[:60]!r} is not a setting's hex digest")
        problem = setting_problem(setting) if isinstance(setting, dict) else "it is not an object"
        if problem:
            raise ValueError(f"setting {setting_id}: {problem}")
        own_sizes = sizes.get(setting_id, [])
        if not isinstance(own_sizes, list) or not all(map(valid_split_sizes, own_sizes)):
            raise ValueError(f"split_sizes of setting {setting_id} is not a list of "
                             f'{{"test": [items, texts], "train": [items, texts]}}')
        cells = [Cell(row=c["aligner"], aligner=c["aligner"], anchors=int(c["anchors"]), seed=int(c["seed"]),
                      status=c["status"], metrics={k: v for k, v in c.items() if k not in CELL_FIELDS},
                      fitted=fitted.get((setting_id, c["aligner"], int(c["anchors"]), int(c["seed"])), {}))
                 for c in payload["cells"] if c["setting"] == setting_id]
        for cell in cells:  # the pages do arithmetic on every number: each must be one a float can hold
            for name, value in cell.metrics.items():
                if value is not None and finite_number(value) is None:
                    raise ValueError(f"cell {cell.aligner} at {cell.anchors} anchors: {name} is {str(value)[:20]}, "
                                     f"not a finite number or null")
        tables.append(Table(dataset, setting_id, setting, cells, own_sizes))
    return tables


def robustness(directory: Path, dataset: str) -> dict | None:
    """``directory/<dataset>-robustness.json``, None where there is none. A file of another shape is an
    error, as a malformed ``<dataset>.json`` is (local_tables)."""
    path = directory / f"{dataset}-robustness.json"
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        problem = _robustness_problem(payload)
    except (ValueError, RecursionError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        raise AlignbenchError(f"{path} is not a robustness JSON ({problem}); write it again with `alignbench "
                              f"leaderboard`, or move it out of the folder.")
    return payload


def _robustness_problem(payload: Any) -> str:
    """What the site reads from a robustness payload that is missing or of another type, or ''."""
    if not isinstance(payload, dict):
        return f"a JSON {type(payload).__name__}, not an object"
    for part in ("claim_seed_001", "summary"):
        entries = payload.get(part, [])
        if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
            return f"{part} is not a list of objects"
    for check in payload.get("claim_seed_001", []):
        fields = {"perturbation": str, "metric": str, "setting": str, "anchors": int, "geometric": dict,
                  "contrastive": dict}
        if wrong := [name for name, kind in fields.items() if not is_json(check.get(name), kind)]:
            return f"a claim_seed_001 entry lacks {', '.join(wrong)} or has the wrong type"
        if not (check.get("holds") is None or isinstance(check["holds"], bool)):
            return f"a claim_seed_001 entry has holds {str(check['holds'])[:40]!r}, not true, false or null"
        drops = [*check["geometric"].values(), *check["contrastive"].values()]
        if not all(is_json(drop, float) or is_json(drop, int) for drop in drops):
            return "a claim_seed_001 entry has a drop that is not a number"
    if any(not isinstance(entry.get("aligner"), str) for entry in payload.get("summary", [])):
        return "a summary entry lacks aligner"
    return ""


def add_store_provenance(tables: list[Table], records: list[CellRecord]) -> int:
    """Attach each store record's provenance to the local cell it produced; returns how many local
    cells the store holds with other numbers (a store that did not make these leaderboards)."""
    index = {}
    for board in boards(records):
        labels = aligner_labels(board)
        for record in board.records:
            index[(board.dataset, board.setting_id, labels[aligner_config(record)], record.anchors, record.seed)] = record
    disagreeing = 0
    for table in tables:
        for i, cell in enumerate(table.cells):
            record = index.get((table.dataset, table.setting_id, cell.aligner, cell.anchors, cell.seed))
            if record is None or cell.origin:
                continue
            if record.status != cell.status or not same_numbers(cell.metrics, record.metrics):
                disagreeing += 1
                continue
            table.cells[i] = replace(cell, provenance=provenance(record))
    return disagreeing


def add_submission(tables: list[Table], submission: Submission) -> None:
    """Rows of a validated submission join the table of their dataset and setting (or a new one)."""
    by_id = {(t.dataset, t.setting_id): t for t in tables}
    name = submission.path.name
    for board in boards(list(submission.records)):
        labels = aligner_labels(board)
        table = by_id.get((board.dataset, board.setting_id))
        if table is None:
            table = by_id[(board.dataset, board.setting_id)] = Table(board.dataset, board.setting_id, board.setting, [],
                                                                     split_sizes(board.records))
            tables.append(table)
        for record in board.records:
            label = labels[aligner_config(record)]
            table.cells.append(Cell(row=f"{label} [{submission.producer['name']}]", aligner=label,
                                    anchors=record.anchors, seed=record.seed, status=record.status,
                                    metrics=normalized(record.metrics), origin=name, producer=submission.producer,
                                    provenance=provenance(record), fitted=record.fitted))
    tables.sort(key=lambda t: (t.dataset, t.setting_id))


def provenance(record: CellRecord) -> dict[str, Any]:
    return {"key": record.key, "environment": record.environment, "aligner": record.config["aligner"],
            "anchor_set": record.config.get("anchor_set", "")}


def normalized(metrics: dict[str, Any]) -> dict[str, float | None]:
    """NaN (a store's "does not apply") as None, as the JSON files have it."""
    return {k: None if v is None or (isinstance(v, float) and math.isnan(v)) else v for k, v in metrics.items()}


def same_numbers(published: dict[str, float | None], stored: dict[str, Any]) -> bool:
    stored = normalized(stored)
    for name, value in published.items():
        other = stored.get(name)
        if (value is None) != (other is None):
            return False
        if value is not None and abs(value - other) > AGREE * max(1.0, abs(value)):
            return False
    return True
