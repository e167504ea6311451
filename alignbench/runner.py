"""The sweep runner: aligners x datasets x supervision levels x seeds, one stored cell at a time.

Every cell is keyed by a hash of everything that can move its numbers (effective parameters after
defaults, plugin package versions, metric versions, anchor strategy). Finished cells are skipped on
a re-run; a cell that raised is stored as ``failed`` with its message and retried next time; a cell
whose aligner cannot use that few anchors is stored as ``n/a``.

The runner is the driver of four stages: plan (:mod:`alignbench.plan`), data (load, encode, cache:
:mod:`alignbench.data`), evaluate (a pure function of a cell, its splits and its anchors:
:mod:`alignbench.evaluate`, run by an executor: :mod:`alignbench.executors`) and record (here: the
store has one writer, this process).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from .cache import EmbeddingCache
from .data import DataStage
from .errors import AlignbenchError
from .evaluate import (AnchorRows, NotApplicable, Outcome, anchor_set, code_digest, damage_train,  # noqa: F401
                       environment, unpaired_items, unpaired_rows)
from .executors import CellTask, Executor, SerialExecutor
from .interfaces import Anchors, DatasetSplits
from .plan import MAX_STORED_INT, Cell, Params, Sweep, batches, config_key, plan_cells  # noqa: F401
from .registry import Registry
from .robustness import Damage
from .store import CellRecord, ResultStore
from .supervision import draw_anchors

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    ran: int = 0
    skipped: int = 0
    not_applicable: int = 0
    failed: list[tuple[Cell, str]] = field(default_factory=list)
    not_applicable_reasons: Counter = field(default_factory=Counter)  # first line of each n/a cell's message


class Runner:
    """Runs a Sweep against a Registry, writing each cell to a ResultStore as it finishes."""

    def __init__(self, registry: Registry, store: ResultStore, *, cache: EmbeddingCache | None = None,
                 on_encode: Callable[[str, int, int], None] | None = None, executor: Executor | None = None,
                 rerun_other_code: bool = False):
        """``cache``: where embeddings of raw datasets are kept (None: encode every time).
        ``on_encode(label, done, total)`` reports encoding progress. ``executor``: where cells are
        evaluated (default: in this process, one after another). ``rerun_other_code``: compute again
        the stored cells that other code computed (their recorded code digest differs from this
        code's); by default a stored cell is done whatever computed it."""
        self.registry = registry
        self.store = store
        self.executor = executor or SerialExecutor()
        self.code = code_digest() if rerun_other_code else None
        # Raw items are encoded where the cells run: by encoder actors on a Ray cluster, else here.
        self.data = DataStage(registry, cache, on_encode, getattr(self.executor, "shard_encoder", None))

    def plan(self, sweep: Sweep) -> list[Cell]:
        """All cells of the sweep. Resolves every name and parameter first, so that a typo fails
        before any work is done."""
        return plan_cells(self.registry, sweep)

    def splits_for(self, config: dict) -> DatasetSplits:
        """Load (and encode, where the dataset has raw items) one dataset; memoized per config."""
        return self.data.splits_for(config)

    def damage(self, cell: Cell, splits: DatasetSplits) -> Damage | str:
        """The damaged train split a perturbed cell learns from, or why the cell is n/a."""
        damage = damage_train(self.registry, cell, splits, self.data.corrupted_inputs(cell))
        return damage.reason if isinstance(damage, NotApplicable) else damage

    def run(self, sweep: Sweep, *, on_cell: Callable[[Cell, str], None] | None = None) -> RunSummary:
        """Run every unfinished cell. ``on_cell(cell, status)`` is called after each one (for progress).

        Several processes may run sweeps on one store at once: each cell is claimed in the store
        before it runs, a cell another live process holds is passed over and come back to once the
        rest is done (finished there: skipped here; its holder gone: taken over), so every cell is
        computed once. KeyboardInterrupt propagates; every cell finished before it is already stored.
        """
        self.store.check_writable()
        cells = self.plan(sweep)
        summary = RunSummary()
        todo = []
        for cell in cells:
            if self.store.finished(cell.key, self.code):
                summary.skipped += 1
                if on_cell:
                    on_cell(cell, "skipped")
            else:
                todo.append(cell)
        if not todo:
            return summary

        def record(finished) -> None:
            for task, outcome in finished:
                self._record(task.cell, outcome, summary, on_cell)

        started, pause = time.time(), 0.1
        with self.store.renewing_leases(), self.executor.running(self.registry) as executor:
            shared: list[str] = []  # keys shared with the executor, retired when the sweep moves on
            while todo:
                held = []
                for (_, seed), group in batches(todo):
                    anchors = None  # drawn when the group's first cell is claimed
                    for cell in group:
                        claim = self.store.claim(cell.key, since=started, code=self.code)
                        if claim == "held":
                            held.append(cell)
                            continue
                        if claim == "done":  # finished by another process meanwhile
                            summary.skipped += 1
                            if on_cell:
                                on_cell(cell, "skipped")
                            continue
                        if claim == "failed":  # failed in another process meanwhile: this sweep's failure too
                            summary.failed.append((cell, f"{self.store.message(cell.key)} (in another process "
                                                         f"running this sweep)"))
                            if on_cell:
                                on_cell(cell, "failed")
                            continue
                        splits = self.data.splits_for(cell.config)
                        if anchors is None:
                            levels = sorted({c.anchors for c in group if c.anchors <= splits.train.n_items})
                            anchors = draw_anchors(splits.train, levels, seed, sweep.anchor_strategy) if levels else {}
                        failed = self._submit(cell, splits, anchors.get(cell.anchors), shared)
                        if failed is not None:
                            self._record(cell, failed, summary, on_cell)
                        record(executor.finished(block=False))
                        while executor.pending >= 2 * executor.capacity:  # claim no further ahead than this
                            record(executor.finished(block=True))
                if held:  # other processes are computing these: wait for them (or for their leases to lapse)
                    executor.all_submitted()
                    record(executor.finished(block=False))
                    pause = 0.1 if len(held) < len(todo) else min(2 * pause, 2.0)
                    log.info("waiting for %d cells that other processes are computing", len(held))
                    time.sleep(pause)
                todo = held
            executor.all_submitted()
            while executor.pending:
                record(executor.finished(block=True))
            for key in shared:  # an executor kept running for further sweeps (robustness: one per dataset)
                executor.retire(key)
        return summary

    def _submit(self, cell: Cell, splits: DatasetSplits, anchors: Anchors | None,
                shared: list[str]) -> Outcome | None:
        """Hand a claimed cell to the executor, with the shared values it reads (shared once each);
        the outcome here when the data stage failed for it (encoding its damaged inputs)."""
        executor = self.executor
        if cell.data_key not in shared:
            for key in shared:  # one dataset in memory at a time, as in the data stage
                executor.retire(key)
            shared.clear()
            executor.share(cell.data_key, splits)
            shared.append(cell.data_key)
        corrupted_key = None
        needs_inputs = cell.damage is not None and cell.damage.stage == "input" and anchors is not None and \
            cell.anchors >= self.registry.load("aligner", cell.aligner).min_anchors
        if needs_inputs:
            try:
                corrupted = self.data.corrupted_inputs(cell)
            except Exception as exc:  # noqa: BLE001 - encoding a damaged copy failed: that cell fails
                log.debug("cell %s failed", cell.key, exc_info=True)
                message = str(exc) if isinstance(exc, AlignbenchError) else f"{type(exc).__name__}: {exc}"
                return Outcome("failed", message, anchor_set=anchor_set(anchors), environment=environment())
            if corrupted is not None:
                corrupted_key = f"{cell.data_key}/{cell.damage.identity}"
                executor.share(corrupted_key, corrupted)
                if corrupted_key not in shared:
                    shared.append(corrupted_key)
        rows = None if anchors is None else AnchorRows.of(anchors)
        executor.submit(CellTask(cell, rows, cell.data_key, corrupted_key))
        return None

    def _record(self, cell: Cell, outcome: Outcome, summary: RunSummary,
                on_cell: Callable[[Cell, str], None] | None) -> None:
        """The record stage: one transaction per cell, in this process only."""
        recorded = dict(cell.config)
        if outcome.anchor_set is not None:
            recorded["anchor_set"] = outcome.anchor_set
        if outcome.split_sizes is not None:
            recorded["split_sizes"] = outcome.split_sizes
        self.store.put(
            CellRecord(
                key=cell.key, dataset=cell.dataset, aligner=cell.aligner, anchors=cell.anchors, seed=cell.seed,
                status=outcome.status, config=recorded, metrics=outcome.metrics, timings=outcome.timings,
                environment=outcome.environment, message=outcome.message,
                finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), fitted=outcome.fitted,
            )
        )
        if outcome.status == "ok":
            summary.ran += 1
        elif outcome.status == "n/a":
            summary.not_applicable += 1
            summary.not_applicable_reasons[outcome.message.splitlines()[0] if outcome.message else "no reason"] += 1
        else:
            summary.failed.append((cell, outcome.message))
        if on_cell:
            on_cell(cell, outcome.status)

