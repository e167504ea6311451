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

from .errors import StoreError

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
COLUMNS = ["key", "dataset", "aligner", "anchors", "seed", "status", "config", "metrics", "timings", "environment",
           "message", "finished_at"]


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
            _check_location(Path(self.path))
            _check_header(Path(self.path))
        try:
            self._db = sqlite3.connect(self.path)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the results store {self.path} ({exc}); pass another path "
                             f"(--store or $ALIGNBENCH_STORE).") from None
        try:
            self._check_contents()  # first: a file that is not ours is left as it was
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(SCHEMA)
            self._db.commit()
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(f"{self.path} is not a usable results store ({exc}): not a SQLite database, or a "
                             f"damaged one. Move it away to start a new store, or pass another path (--store).") from None
        except StoreError:
            self._db.close()
            raise

    def _check_contents(self) -> None:
        """Refuse, before any cell runs, a SQLite file that is damaged or holds something else: a cell
        must never be computed and then fail to be stored."""
        problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            detail = [line for line in problems[0].splitlines() if not line.startswith("***")] or problems
            raise StoreError(f"{self.path} is damaged ({detail[0]}); move it away to start a new store, or "
                             f"recover its rows with `sqlite3 {self.path} .recover`.")
        tables = [row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if "results" in tables:
            columns = [row[1] for row in self._db.execute("PRAGMA table_info(results)")]
            if columns != COLUMNS:
                raise StoreError(f"{self.path} has a results table of another schema (columns: {', '.join(columns)}); "
                                 f"pass another path (--store) for alignbench's results.")
        elif tables:
            raise StoreError(f"{self.path} is a SQLite database of something else (tables: {', '.join(tables)}); "
                             f"pass another path (--store) for alignbench's results.")

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


def _check_location(path: Path) -> None:
    """The store's path must be a file (or nothing yet) in a directory that exists or can be made."""
    if path.is_dir():
        raise StoreError(f"the results store {path} is a directory; pass a file path such as {path / 'results.sqlite'}.")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise StoreError(f"cannot create the results store {path}: {parent} is a file, not a directory; pass "
                         f"another path (--store or $ALIGNBENCH_STORE).")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the directory of the results store {path} ({exc.strerror}); pass another "
                         f"path (--store or $ALIGNBENCH_STORE).") from None


def _check_header(path: Path) -> None:
    """A non-empty file must start as SQLite files do (SQLite would take a short one for an empty
    database and write over it)."""
    try:
        with open(path, "rb") as f:
            header = f.read(16)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read the results store {path} ({exc.strerror}); pass another path (--store).") from None
    if header and header != b"SQLite format 3\x00":
        raise StoreError(f"{path} is not a results store (not a SQLite database); pass another path (--store), or "
                         f"move the file away to start a new store.")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=True)
