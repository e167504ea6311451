"""The results store: one SQLite row per sweep cell, written the moment the cell finishes.

A cell's key is a hash of every setting that can move its numbers, so a re-run of the same sweep
finds finished cells and skips them, and a changed setting is a new cell rather than an overwrite.
SQLite commits each row on its own: an interrupted sweep keeps everything it finished.

Several processes can share one store: a process claims a cell (a row in ``leases`` naming its host
and pid, with an expiry its heartbeat pushes forward) before computing it, and the others take other
cells. A lease whose holder is gone (its pid is dead on this host, or its expiry passed) is taken over,
so a process killed with kill -9 loses no cell. Claims run in ``BEGIN IMMEDIATE`` transactions: check
and take are one step, and SQLite's write lock makes them atomic across processes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, TypeVar

from .errors import StoreError
from .processes import process_gone

T = TypeVar("T")

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
    finished_at TEXT NOT NULL,
    fitted TEXT NOT NULL DEFAULT '{}'  -- JSON: what the fit chose (Aligner.fit_report, the space's dim)
)
"""
# Stores written before ``fitted`` existed gain it on open, empty for their cells.
ADD_FITTED = "ALTER TABLE results ADD COLUMN fitted TEXT NOT NULL DEFAULT '{}'"

# Added beside ``results`` (stores written before it gain it on open; older alignbench ignores it).
LEASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    key TEXT PRIMARY KEY,          -- the cell's key
    owner TEXT NOT NULL,           -- the ResultStore that holds it: host/pid/random token
    host TEXT NOT NULL,            -- hostname and pid namespace: where pid can be checked
    pid INTEGER NOT NULL,
    expires_at REAL NOT NULL,      -- unix time; the holder's heartbeat pushes it forward
    released_at REAL               -- NULL while held; set when the holder stored the cell as failed
)
"""

STATUSES = ("ok", "n/a", "failed")
COLUMNS = ["key", "dataset", "aligner", "anchors", "seed", "status", "config", "metrics", "timings", "environment",
           "message", "finished_at", "fitted"]
LEASE_COLUMNS = ["key", "owner", "host", "pid", "expires_at", "released_at"]
# A stored cell's status and the digest of the code that computed it (evaluate.code_digest).
FINISHED_QUERY = "SELECT status, json_extract(environment, '$.code') FROM results WHERE key = ?"
LEASE_SECONDS = 60.0  # a lease of a process elsewhere is trusted this long after its last heartbeat
BUSY_SECONDS = 30.0  # how long a write waits for another process's write lock
Claim = Literal["claimed", "held", "done", "failed"]

log = logging.getLogger(__name__)


# Entries of a record's config that its run found out (which anchor pairs were drawn, how large the
# splits were), not inputs: the cell's key and its leaderboard setting leave them out.
RUN_ENTRIES = ("anchor_set", "split_sizes")


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
    fitted: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Lease:
    key: str
    owner: str
    host: str
    pid: int
    expires_at: float
    released_at: float | None


class ResultStore:
    """SQLite-backed results; ``path=":memory:"`` for a throwaway store.

    ``lease_seconds``: how long a claimed cell stays claimed without a heartbeat (see :meth:`claim`).
    """

    def __init__(self, path: str | Path, *, lease_seconds: float = LEASE_SECONDS):
        self.path = str(path)
        self.lease_seconds = lease_seconds
        self.leases_host = _machine()
        self._owner = f"{self.leases_host}/{os.getpid()}/{uuid.uuid4().hex[:12]}"
        self.read_only = False
        target, uri = self.path, False
        if self.path != ":memory:":
            _check_location(Path(self.path))
            _check_header(Path(self.path))
            self.read_only, target = _read_only_target(Path(self.path))
            uri = self.read_only
        try:
            self._db = sqlite3.connect(target, timeout=BUSY_SECONDS, uri=uri)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the results store {self.path} ({exc}); pass another path "
                             f"(--store or $ALIGNBENCH_STORE).") from None
        try:
            retry_while_locked(self._set_up, self._db)
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(f"{self.path} is not a usable results store ({exc}): not a SQLite database, or a "
                             f"damaged one. Move it away to start a new store, or pass another path (--store).") from None
        except StoreError:
            self._db.close()
            raise

    def _set_up(self) -> None:
        self._check_contents()  # first: a file that is not ours is left as it was
        if not self.read_only:  # a read-only store is read as it is (whatever its journal mode)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(SCHEMA)
            self._db.commit()
        self._add_fitted_column()
        self._add_leases_table()
        self._synchronous = self._db.execute("PRAGMA synchronous").fetchone()[0]

    def _check_contents(self) -> None:
        """Refuse, before any cell runs, a SQLite file that is damaged or holds something else: a cell
        must never be computed and then fail to be stored."""
        problems = [row[0] for row in self._db.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            detail = [line for line in problems[0].splitlines() if not line.startswith("***")] or problems
            raise StoreError(f"{self.path} is damaged ({detail[0]}); move it away to start a new store, or "
                             f"recover its rows with `sqlite3 {self.path} .recover`.")
        tables = [row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if "results" not in tables and set(tables) - {"leases"}:
            raise StoreError(f"{self.path} is a SQLite database of something else (tables: {', '.join(tables)}); "
                             f"pass another path (--store) for alignbench's results.")
        for table, expected in (("results", COLUMNS), ("leases", LEASE_COLUMNS)):
            if table in tables:
                columns = self._columns(table)
                if columns != expected and not (table == "results" and columns == expected[:-1]):
                    raise StoreError(f"{self.path} has a {table} table of another schema (columns: "
                                     f"{', '.join(columns)}); pass another path (--store) for alignbench's results.")

    def _add_fitted_column(self) -> None:
        """Stores written before ``fitted`` gain it, empty for their cells. Checked again and added under
        the write lock: two processes opening one old store at once would otherwise both add it, and
        the second fail. A store that cannot be written (read-only) is read without it."""
        if "fitted" in self._columns("results"):
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
            if "fitted" not in self._columns("results"):
                self._db.execute(ADD_FITTED)
            self._db.commit()
        except sqlite3.OperationalError as exc:
            self._db.rollback()
            if "readonly" not in str(exc):
                raise
            log.debug("%s is read-only: its cells are read without what their fits chose", self.path)

    def _columns(self, table: str) -> list[str]:
        return [row[1] for row in self._db.execute(f"PRAGMA table_info({table})")]

    def _add_leases_table(self) -> None:
        """Stores written before leases gain the table; one that cannot be written (read-only) is
        still opened for reading its results (claiming a cell in it fails)."""
        try:
            with self._db:
                self._db.execute(LEASES_SCHEMA)
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc):
                raise
            log.debug("%s is read-only: no leases table added", self.path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def finished(self, key: str, code: str | None = None) -> bool:
        """Whether the cell is stored as ok or n/a (and, given ``code``, was computed by that code)."""
        return self._finished(self._db.execute(FINISHED_QUERY, (key,)).fetchone(), code)

    @staticmethod
    def _finished(row: tuple | None, code: str | None) -> bool:
        return row is not None and row[0] in ("ok", "n/a") and (code is None or row[1] == code)

    def check_writable(self) -> None:
        """Before any cell runs: a read-only store is an error naming the fix."""
        if self.read_only:
            raise StoreError(f"the results store {self.path} is read-only (its file or folder cannot be written); "
                             f"make it writable, or pass another --store (a copy, to add to it).")

    def put(self, record: CellRecord) -> None:
        self.check_writable()
        if record.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {record.status!r}")
        with self._db:  # one transaction per cell: committed now, or not at all, with its lease released
            self._db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.key, record.dataset, record.aligner, record.anchors, record.seed, record.status,
                    _dumps(record.config), _dumps(record.metrics), _dumps(record.timings),
                    _dumps(record.environment), record.message, record.finished_at, _dumps(record.fitted),
                ),
            )
            if record.status == "failed":  # kept as a mark: runs under way when it failed do not retry it
                self._db.execute("UPDATE leases SET released_at = ? WHERE key = ? AND owner = ?",
                                 (time.time(), record.key, self._owner))
            else:  # finished for good: no lease is needed any more
                self._db.execute("DELETE FROM leases WHERE key = ?", (record.key,))

    # ------------------------------------------------------------------ leases
    def claim(self, key: str, *, since: float, code: str | None = None) -> Claim:
        """Claim a cell before computing it. ``"claimed"``: it is this store's to compute until
        :meth:`put` stores it (or :meth:`release`). ``"held"``: another live process is computing it;
        ask again later. ``"done"``: stored as ok or n/a (by ``code``, when given: a cell other code
        computed is claimed again). ``"failed"``: stored as failed by another process at or after
        ``since`` (unix time: when this run started; a run retries failures of earlier runs only, and
        reports these as its own: :meth:`message` says why).

        A lease is taken over when its expiry passed, or at once when it names a process of this host
        that no longer exists (killed). One small write transaction: cheap next to any cell.
        """
        self.check_writable()
        # A lease is worth no disk flush (lost with the machine, it is moot): the next stored cell's
        # commit flushes it along, and results keep SQLite's full durability.
        self._db.execute("PRAGMA synchronous = NORMAL")
        try:
            self._db.execute("BEGIN IMMEDIATE")  # the write lock first: no other process can claim in between
            try:
                claim = self._claim(key, since, time.time(), code)
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()
        finally:
            self._db.execute(f"PRAGMA synchronous = {int(self._synchronous)}")
        return claim

    def _claim(self, key: str, since: float, now: float, code: str | None) -> Claim:
        stored = self._db.execute(FINISHED_QUERY, (key,)).fetchone()
        if self._finished(stored, code):
            return "done"
        lease = self._db.execute("SELECT owner, host, pid, expires_at, released_at FROM leases WHERE key = ?",
                                 (key,)).fetchone()
        if lease is not None:
            owner, host, pid, expires_at, released_at = lease
            if released_at is not None:
                if stored is not None and released_at >= since and owner != self._owner:
                    return "failed" if stored[0] == "failed" else "done"
            elif owner != self._owner and expires_at > now and not (host == self.leases_host and process_gone(pid)):
                return "held"
            else:
                log.info("taking over cell %s from %s (%s)", key, owner,
                         "ours" if owner == self._owner else "expired" if expires_at <= now else "process gone")
        self._db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, NULL)",
                         (key, self._owner, self.leases_host, os.getpid(), now + self.lease_seconds))
        return "claimed"

    def message(self, key: str) -> str:
        """The stored message of a cell ("" for none, or no such cell)."""
        row = self._db.execute("SELECT message FROM results WHERE key = ?", (key,)).fetchone()
        return row[0] or "" if row else ""

    def release(self, key: str | None = None) -> None:
        """Give back a claimed cell that will not be stored (``None``: every cell this store holds)."""
        with self._db:
            if key is None:
                self._db.execute("DELETE FROM leases WHERE owner = ? AND released_at IS NULL", (self._owner,))
            else:
                self._db.execute("DELETE FROM leases WHERE key = ? AND owner = ? AND released_at IS NULL",
                                 (key, self._owner))

    @contextmanager
    def renewing_leases(self) -> Iterator[None]:
        """While the block runs, a heartbeat thread keeps this store's leases from expiring (a cell may
        compute for minutes); at the end, whatever is still claimed (interrupted, raised) is released."""
        stop = threading.Event()
        heartbeat = None
        if self.path != ":memory:":  # no other process can see a memory store: nothing to renew
            heartbeat = threading.Thread(target=self._renew, args=(stop,), name="alignbench-lease-heartbeat",
                                         daemon=True)
            heartbeat.start()
        try:
            yield
        finally:
            stop.set()
            if heartbeat is not None:
                heartbeat.join()
            self.release()

    def _renew(self, stop: threading.Event) -> None:
        db = sqlite3.connect(self.path, timeout=BUSY_SECONDS)  # a connection belongs to one thread
        try:
            db.execute("PRAGMA synchronous = NORMAL")  # leases only: see claim()
            while not stop.wait(self.lease_seconds / 4):
                try:
                    with db:
                        db.execute("UPDATE leases SET expires_at = ? WHERE owner = ? AND released_at IS NULL",
                                   (time.time() + self.lease_seconds, self._owner))
                except sqlite3.Error as exc:  # the next beat tries again; four missed in a row: they lapse
                    log.warning("could not renew the leases in %s (%s)", self.path, exc)
        finally:
            db.close()

    def leases(self) -> list[Lease]:
        """Cells claimed and not stored yet, for inspection."""
        return [Lease(*row) for row in self._db.execute("SELECT * FROM leases WHERE released_at IS NULL ORDER BY key")]

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
            key, dataset, aligner, anchors, seed, status, config, metrics, timings, env, message, finished = row[:12]
            try:
                fitted = json.loads(row[12]) if len(row) > 12 else {}  # a read-only store of before the column
                parsed = [json.loads(text) for text in (config, metrics, timings, env)]
                if not all(isinstance(value, dict) for value in (*parsed, fitted)):
                    raise ValueError("a field is not a JSON object")
                if problem := _metric_problem(parsed[1]):
                    raise ValueError(problem)
            except (TypeError, ValueError) as exc:
                raise StoreError(f"{self.path}: the stored cell {key} is damaged ({exc}); delete it (sqlite3 "
                                 f"{self.path} \"DELETE FROM results WHERE key = '{key}'\") and run again to "
                                 f"compute it anew.") from None
            yield CellRecord(key, dataset, aligner, anchors, seed, status, *parsed, message, finished, fitted)


def _metric_problem(metrics: dict[str, Any]) -> str:
    """A stored metric that is not a number (or null, for one that does not apply), or ''. Every
    table and comparison does arithmetic on them; NaN is kept (a metric undefined for the cell)."""
    for name, value in sorted(metrics.items()):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"metric {name} is {str(value)[:40]!r}, not a number"
    return ""


def retry_while_locked(step: Callable[[], T], db: sqlite3.Connection, seconds: float = BUSY_SECONDS) -> T:
    """``step()``, run again while SQLite answers "database is locked", for up to ``seconds``.

    Processes that open one new store at once race to turn on its write-ahead log; SQLite answers
    some of those races with an immediate "locked" instead of waiting its busy timeout (to avoid a
    deadlock), and a worker failed to start. The set-up steps can all be run again."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            db.rollback()
            time.sleep(0.05)


def _machine() -> str:
    """Where a pid names a process: the hostname, and the pid namespace where Linux tells it (two
    containers may share a hostname and a store, not their pids)."""
    try:
        return f"{socket.gethostname()} {os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return socket.gethostname()


def _read_only_target(path: Path) -> tuple[bool, str]:
    """Whether the store at ``path`` can only be read (its file or its real folder cannot be written:
    a read-only disk, permissions), and the SQLite URI to read it with. SQLite's own mode would try to
    write its journal there and fail as if the file were damaged. ``immutable`` (SQLite makes no
    side files) only where the folder cannot take them and no write-ahead log is left beside the
    file: with one, immutable would read the file without the rows still in the log."""
    real = path.resolve()
    if not real.is_file():
        return False, str(path)
    folder_writable = os.access(real.parent, os.W_OK)
    if os.access(real, os.W_OK) and folder_writable:
        return False, str(path)
    pending = any(real.with_name(real.name + suffix).exists() for suffix in ("-wal", "-journal"))
    return True, f"{real.as_uri()}?mode=ro{'' if folder_writable or pending else '&immutable=1'}"


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
