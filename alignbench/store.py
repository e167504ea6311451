"""The results store: one SQLite row per sweep cell, written the moment the cell finishes.

A cell's key is a hash of every setting that can move its numbers, so a re-run of the same sweep
finds finished cells and skips them, and a changed setting is a new cell rather than an overwrite.
SQLite commits each row on its own: an interrupted sweep keeps everything it finished.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    aligner TEXT NOT NULL,
    anchors INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,          -- ok | n/a | failed
    config TEXT NOT NULL,          -- JSON: everything in the key
    metrics TEXT NOT NULL,         -- JSON: {name: value}
    timings TEXT NOT NULL,         -- JSON: seconds per stage
    environment TEXT NOT NULL,     -- JSON: package versions
    message TEXT NOT NULL DEFAULT '',
    finished_at TEXT NOT NULL
)
"""

STATUSES = ("ok", "n/a", "failed")


@dataclass(frozen=True)
class CellRecord:
    key: str
    dataset: str
    aligner: str
    anchors: int
    seed: int
    status: str
    config: dict[str, Any]
    metrics: dict[str, float]
    timings: dict[str, float]
    environment: dict[str, str]
    message: str
    finished_at: str


class ResultStore:
    """SQLite-backed results; ``path=":memory:"`` for a throwaway store."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self, key: str) -> str | None:
        row = self._db.execute("SELECT status FROM results WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def put(self, record: CellRecord) -> None:
        if record.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {record.status!r}")
        with self._db:  # one transaction per cell: committed now, or not at all
            self._db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.key, record.dataset, record.aligner, record.anchors, record.seed, record.status,
                    _dumps(record.config), _dumps(record.metrics), _dumps(record.timings),
                    _dumps(record.environment), record.message, record.finished_at,
                ),
            )

    def records(self, *, dataset: str | None = None, status: str | None = None) -> list[CellRecord]:
        query, args = "SELECT * FROM results WHERE 1=1", []
        if dataset is not None:
            query, args = query + " AND dataset = ?", [*args, dataset]
        if status is not None:
            query, args = query + " AND status = ?", [*args, status]
        return list(self._rows(query + " ORDER BY dataset, aligner, anchors, seed, key", args))

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def _rows(self, query: str, args: list[Any]) -> Iterator[CellRecord]:
        for row in self._db.execute(query, args):
            key, dataset, aligner, anchors, seed, status, config, metrics, timings, env, message, finished = row
            yield CellRecord(
                key, dataset, aligner, anchors, seed, status, json.loads(config), json.loads(metrics),
                json.loads(timings), json.loads(env), message, finished,
            )


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)
