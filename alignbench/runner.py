"""The sweep runner: aligners x datasets x supervision levels x seeds, one stored cell at a time.

Every cell is keyed by a hash of everything that can move its numbers (effective parameters after
defaults, plugin package versions, metric versions, anchor strategy). Finished cells are skipped on
a re-run; a cell that raised is stored as ``failed`` with its message and retried next time; a cell
whose aligner cannot use that few anchors is stored as ``n/a``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import numpy as np

from .cache import CacheWriteError, EmbeddingCache, items_digest, texts_digest
from .errors import AlignbenchError, InvalidParameterError
from .interfaces import Aligner, AlignmentResult, Anchors, Dataset, DatasetSplits, Encoder, Metric, PairedData
from .protocols import PROTOCOLS, gallery_with_anchors, paper_splits
from .registry import Registry
from .robustness import (CorruptedItems, Damage, apply_damage, check_fraction, check_perturbation, damaged_rows,
                         side_of, surviving_anchors)
from .store import CellRecord, ResultStore
from .supervision import STRATEGIES, draw_anchors

log = logging.getLogger(__name__)

Params = dict[str, Any]
MAX_STORED_INT = 2**63 - 1  # seeds and levels are SQLite integers in the results store


@dataclass
class Sweep:
    """What to run. Components are ``(name, params)`` pairs; params are validated against the plugin."""

    aligners: list[tuple[str, Params]]
    datasets: list[tuple[str, Params]]
    levels: list[int]
    seeds: list[int]
    metrics: list[tuple[str, Params]] = field(default_factory=lambda: [("retrieval", {}), ("alignment-error", {})])
    anchor_strategy: str = "random"
    encoders: dict[str, tuple[str, Params]] = field(default_factory=dict)
    protocol: str = "standard"
    # Robustness suite: each perturbation at each damage fraction (percent of one modality's train rows),
    # beside the clean cells.
    perturbations: list[tuple[str, Params]] = field(default_factory=list)
    fractions: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Cell:
    dataset: str
    aligner: str
    anchors: int
    seed: int
    config: dict[str, Any]
    perturbation: str = ""  # "name(modality) p%" for a damaged cell, "" for a clean one

    @property
    def key(self) -> str:
        return config_key(self.config)


@dataclass
class RunSummary:
    ran: int = 0
    skipped: int = 0
    not_applicable: int = 0
    failed: list[tuple[Cell, str]] = field(default_factory=list)


def config_key(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, set)):
        return list(value)
    raise TypeError(f"cannot record {type(value).__name__} in a result config")


def environment() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for package in ("alignbench", "numpy", "scipy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


class Runner:
    """Runs a Sweep against a Registry, writing each cell to a ResultStore as it finishes."""

    def __init__(self, registry: Registry, store: ResultStore, *, cache: EmbeddingCache | None = None,
                 on_encode: Callable[[str, int, int], None] | None = None):
        """``cache``: where embeddings of raw datasets are kept (None: encode every time).
        ``on_encode(label, done, total)`` reports encoding progress."""
        self.registry = registry
        self.store = store
        self.cache = cache
        self.on_encode = on_encode
        # One dataset in memory at a time: its key, embedded splits, raw splits, corrupted embeddings.
        self._loaded: tuple[str, DatasetSplits, DatasetSplits] | None = None
        self._corrupted: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ planning
    def plan(self, sweep: Sweep) -> list[Cell]:
        """All cells of the sweep. Resolves every name and parameter first, so that a typo fails
        before any work is done."""
        if sweep.anchor_strategy not in STRATEGIES:
            raise InvalidParameterError(
                f"unknown anchor strategy {sweep.anchor_strategy!r}; choose one of {', '.join(STRATEGIES)}."
            )
        if any(level < 0 for level in sweep.levels) or not sweep.levels:
            raise InvalidParameterError(f"supervision levels must be integers >= 0, got {sweep.levels}.")
        if sweep.protocol not in PROTOCOLS:
            raise InvalidParameterError(f"unknown protocol {sweep.protocol!r}; choose one of {', '.join(PROTOCOLS)}.")
        if not sweep.seeds:
            raise InvalidParameterError("no seeds given; pass e.g. --seeds 0,1,2.")
        if any(not 0 <= seed <= MAX_STORED_INT for seed in sweep.seeds):
            raise InvalidParameterError(f"seeds must be integers from 0 to 2**63 - 1, got {sweep.seeds}; "
                                        f"pass e.g. --seeds 0,1,2.")
        if any(level > MAX_STORED_INT for level in sweep.levels):
            raise InvalidParameterError(f"supervision levels must be at most 2**63 - 1, got {sweep.levels}.")
        self._validate_components(sweep)
        metrics = [self._describe("metric", n, p) for n, p in sweep.metrics]
        damages = self._plan_damage(sweep)
        cells = []
        for dataset_name, dataset_params in sweep.datasets:
            dataset = self._describe("dataset", dataset_name, dataset_params)
            encoders = self._encoders_for(dataset_name, sweep.encoders)
            for aligner_name, aligner_params in sweep.aligners:
                aligner = self._describe("aligner", aligner_name, aligner_params)
                # An aligner's own seed follows the cell's unless the user set it; seedless ones keep their keys.
                seeded = "seed" in aligner["params"] and "seed" not in aligner_params
                for seed in sweep.seeds:
                    cell_aligner = {**aligner, "params": {**aligner["params"], "seed": int(seed)}} if seeded else aligner
                    for level in sweep.levels:
                        config = {
                            "dataset": dataset,
                            "encoders": encoders,
                            "aligner": cell_aligner,
                            "anchors": int(level),
                            "seed": int(seed),
                            "anchor_strategy": sweep.anchor_strategy,
                            "metrics": metrics,
                        }
                        if sweep.protocol != "standard":  # keeps standard cells' keys unchanged
                            config["protocol"] = sweep.protocol
                        cells.append(Cell(dataset_name, aligner_name, int(level), int(seed), config))
                        for damage in damages:  # clean cells keep their keys: damaged ones add a field
                            label = f"{damage['name']}({damage['params']['modality']}) {damage['fraction']}%"
                            cells.append(Cell(dataset_name, aligner_name, int(level), int(seed),
                                              {**config, "perturbation": damage}, label))
        return cells

    def _validate_components(self, sweep: Sweep) -> None:
        """Impossible parameter values, before any work: every component whose class defines
        ``validate()`` checks itself (raising InvalidParameterError or InvalidInputError), and a
        perturbation must damage a modality of every dataset (``modalities`` on the dataset class,
        default image and text)."""
        chosen = [("dataset", sweep.datasets), ("aligner", sweep.aligners), ("metric", sweep.metrics),
                  ("encoder", list(sweep.encoders.values())), ("perturbation", sweep.perturbations)]
        for kind, components in chosen:
            for name, params in components:
                component = self.registry.create(kind, name, params)
                validate = getattr(component, "validate", None)
                if callable(validate):
                    validate()
                modality = getattr(component, "modality", None) if kind == "perturbation" else None
                for dataset_name, _ in sweep.datasets if modality is not None else ():
                    modalities = getattr(self.registry.load("dataset", dataset_name), "modalities", ("image", "text"))
                    if modality not in modalities:
                        raise InvalidParameterError(
                            f"perturbation {name!r} damages {modality!r}, but {dataset_name} holds "
                            f"{' and '.join(modalities)}; write e.g. --perturbation {name}:{modalities[0]}.")

    def _plan_damage(self, sweep: Sweep) -> list[dict[str, Any]]:
        if sweep.perturbations and sweep.protocol != "standard":
            raise InvalidParameterError("the robustness suite runs under the standard protocol only.")
        if sweep.perturbations and not sweep.fractions:
            raise InvalidParameterError("perturbations need damage fractions, e.g. --fractions 20,40,60,80.")
        for percent in sweep.fractions:
            check_fraction(percent)
        damages = []
        for name, params in sweep.perturbations:
            described = self._describe("perturbation", name, params)
            check_perturbation(self.registry.create("perturbation", name, params))
            described["stage"] = self.registry.load("perturbation", name).stage
            damages += [{**described, "fraction": int(p)} for p in sorted(set(sweep.fractions))]
        return damages

    def _encoders_for(self, dataset: str, chosen: dict[str, tuple[str, Params]]) -> dict[str, Any]:
        """The encoders a dataset's cells use: none for embedded datasets (so they never enter its
        cells' keys), the chosen ones or the dataset's defaults for raw ones."""
        dataset_cls = self.registry.load("dataset", dataset)
        if not dataset_cls.raw:
            return {}
        encoders = {m: (n, {}) for m, n in dataset_cls.default_encoders.items()} | dict(chosen)
        return {m: self._describe("encoder", n, p) for m, (n, p) in sorted(encoders.items())}

    def _describe(self, kind: str, name: str, params: Params) -> dict[str, Any]:
        spec = self.registry.get(kind, name)
        instance = self.registry.create(kind, name, params)
        described = {"name": name, "params": instance.get_params(), "source": spec.source}
        if kind == "metric":
            described["version"] = type(instance).version
        return described

    # ------------------------------------------------------------------ running
    def run(self, sweep: Sweep, *, on_cell: Callable[[Cell, str], None] | None = None) -> RunSummary:
        """Run every unfinished cell. ``on_cell(cell, status)`` is called after each one (for progress).

        Several processes may run sweeps on one store at once: each cell is claimed in the store
        before it runs, a cell another live process holds is passed over and come back to once the
        rest is done (finished there: skipped here; its holder gone: taken over), so every cell is
        computed once. KeyboardInterrupt propagates; every cell finished before it is already stored.
        """
        cells = self.plan(sweep)
        summary = RunSummary()
        todo = []
        for cell in cells:
            if self.store.status(cell.key) in ("ok", "n/a"):
                summary.skipped += 1
                if on_cell:
                    on_cell(cell, "skipped")
            else:
                todo.append(cell)
        if not todo:
            return summary
        started, pause = time.time(), 0.1
        with self.store.renewing_leases():
            while todo:
                held = []
                for (dataset_key, seed), group in _group_by_dataset_and_seed(todo):
                    anchors = None  # drawn when the group's first cell is claimed
                    for cell in group:
                        claim = self.store.claim(cell.key, since=started)
                        if claim == "held":
                            held.append(cell)
                            continue
                        if claim == "done":  # finished by another process meanwhile
                            summary.skipped += 1
                            if on_cell:
                                on_cell(cell, "skipped")
                            continue
                        splits = self.splits_for(group[0].config)
                        if anchors is None:
                            levels = sorted({c.anchors for c in group if c.anchors <= splits.train.n_items})
                            anchors = draw_anchors(splits.train, levels, seed, sweep.anchor_strategy) if levels else {}
                        status, message = self._run_cell(cell, splits, anchors.get(cell.anchors))
                        if status == "ok":
                            summary.ran += 1
                        elif status == "n/a":
                            summary.not_applicable += 1
                        else:
                            summary.failed.append((cell, message))
                        if on_cell:
                            on_cell(cell, status)
                if held:  # other processes are computing these: wait for them (or for their leases to lapse)
                    pause = 0.1 if len(held) < len(todo) else min(2 * pause, 2.0)
                    log.info("waiting for %d cells that other processes are computing", len(held))
                    time.sleep(pause)
                todo = held
        return summary

    def splits_for(self, config: dict[str, Any]) -> DatasetSplits:
        """Load (and encode, where the dataset has raw items) one dataset; memoized per config."""
        protocol = config.get("protocol", "standard")
        key = config_key({"dataset": config["dataset"], "encoders": config["encoders"], "protocol": protocol})
        if self._loaded is None or self._loaded[0] != key:
            dataset: Dataset = self.registry.create("dataset", config["dataset"]["name"], config["dataset"]["params"])
            raw = dataset.load()
            splits = self._embed(raw, config["dataset"], config["encoders"])
            self._loaded = (key, paper_splits(splits) if protocol == "paper" else splits, raw)
            self._corrupted = {}
        return self._loaded[1]

    def _embed(self, splits: DatasetSplits, dataset: dict[str, Any], encoders: dict[str, Any]) -> DatasetSplits:
        if splits.train.is_embedded and splits.test.is_embedded:
            return splits
        x_modality, y_modality = splits.modalities

        def encode(split: PairedData, name: str) -> PairedData:
            x_ids = items_digest(split.item_ids) if split.item_ids is not None else None
            return PairedData(
                x=self._encode(split.x, dataset, encoders, x_modality, name, x_ids),
                y=self._encode(split.y, dataset, encoders, y_modality, name, texts_digest(split.y)),
                text_item=split.text_item, item_ids=split.item_ids, latent=split.latent, labels=split.labels,
            )

        return DatasetSplits(encode(splits.train, "train"), encode(splits.test, "test"), splits.modalities)

    def _encode(self, items, dataset: dict[str, Any], encoders: dict[str, Any], modality: str, split: str,
                ids_hash: str | None, damage: dict[str, Any] | None = None) -> np.ndarray:
        """Embeddings of one side of one split, through the cache when the items have identities.
        ``damage``: the perturbation that corrupted these items (part of the cache key).

        Repeated texts are encoded once: identical captions must get identical embeddings (an
        encoder's batch composition moves the last bits, which would break exact ties by noise and
        make instance-level ranks differ from machine to machine), and encoding them once is cheaper.
        """
        if ids_hash is not None and len(items) and all(isinstance(t, str) for t in items):
            first = dict.fromkeys(items)
            if len(first) < len(items):
                unique = list(first)
                row = {text: i for i, text in enumerate(unique)}
                embedded = self._encode(unique, dataset, encoders, modality, split, texts_digest(unique), damage)
                return embedded[np.fromiter((row[t] for t in items), dtype=np.intp, count=len(items))]
        if modality not in encoders:
            raise InvalidParameterError(
                f"this dataset holds raw {modality} items; choose an encoder with --{modality}-encoder NAME "
                f"(see `alignbench list`)."
            )
        described = encoders[modality]
        encoder: Encoder = self.registry.create("encoder", described["name"], described["params"])
        label = f"{dataset['name']} {split} {modality} ({described['name']})"
        if damage is not None:
            label += f", {damage['name']}"
        progress = (lambda done, total: self.on_encode(label, done, total)) if self.on_encode else None
        if self.cache is None or ids_hash is None:
            if ids_hash is None and self.cache is not None:
                log.warning("%s has no item ids; its embeddings are not cached", label)
            return encoder.encode(items)
        identity = {"name": described["name"], "source": described["source"], **encoder.identity()}
        dataset_identity = {"dataset": dataset["name"], "split": split, "side": modality}
        if damage is not None:
            dataset_identity["perturbation"] = {k: damage[k] for k in ("name", "params", "source")}
        try:
            return self.cache.get_or_encode(
                encoder.encode, items, encoder_identity=identity, dataset_identity=dataset_identity,
                ids_hash=ids_hash, progress=progress,
            )
        except CacheWriteError as exc:  # encoded, not cached: warn once (the cache tries no more writes) and go on
            log.warning("%s", exc)
            return exc.embeddings

    def damage(self, cell: Cell, splits: DatasetSplits) -> Damage | str:
        """The damaged train split a perturbed cell learns from, or why the cell is n/a."""
        config = cell.config
        damage = config["perturbation"]
        perturbation = self.registry.create("perturbation", damage["name"], damage["params"])
        side = side_of(perturbation, splits.modalities)
        train = splits.train
        corrupted = None
        changeable = np.ones(train.n_items if side == "x" else train.n_texts, dtype=bool)
        if damage["stage"] == "input":
            if not self.registry.load("dataset", cell.dataset).raw:
                return f"{damage['name']} corrupts raw {perturbation.modality} items; this dataset holds embeddings"
            raw = self._loaded[2].train
            raw_side = raw.x if side == "x" else raw.y
            memo = config_key({k: damage[k] for k in ("name", "params", "source")})
            if memo not in self._corrupted:
                items = CorruptedItems(raw_side, perturbation, perturbation.seed)
                if side == "y":
                    # Captions are small: corrupt each once, not on every pass that hashes, dedups and
                    # encodes them (the lazy sequence is for photo collections).
                    items = list(items)
                changeable = np.array([perturbation.can_change(item) for item in raw_side], dtype=bool)
                ids = (texts_digest(items) if side == "y" else
                       items_digest(raw.item_ids) if raw.item_ids is not None else None)
                embedded = self._encode(items, config["dataset"], config["encoders"], perturbation.modality, "train",
                                        ids, damage)
                self._corrupted[memo] = (changeable, embedded)
            changeable, corrupted = self._corrupted[memo]
        label = f"{damage['name']} on {train.n_items if side == 'x' else train.n_texts} {perturbation.modality} rows"
        rows = damaged_rows(changeable, damage["fraction"], cell.seed, label)
        return apply_damage(train, perturbation, side, rows, cell.seed, corrupted)

    def _run_cell(self, cell: Cell, splits: DatasetSplits, anchors: Anchors | None) -> tuple[str, str]:
        config = cell.config
        aligner_cls = self.registry.load("aligner", cell.aligner)
        timings: dict[str, float] = {}
        metrics: dict[str, float] = {}
        status, message = "ok", ""
        if anchors is None:
            status = "n/a"
            message = f"{cell.anchors} anchors asked for; the train split has {splits.train.n_items} items"
        elif cell.anchors < aligner_cls.min_anchors:
            status = "n/a"
            message = f"{cell.aligner} needs at least {aligner_cls.min_anchors} anchors"
        else:
            try:
                damage = self.damage(cell, splits) if "perturbation" in config else None
                if isinstance(damage, str):
                    status, message = "n/a", damage
                else:
                    if damage is not None:
                        anchors = surviving_anchors(anchors, damage)
                    if len(anchors.items) < aligner_cls.min_anchors:
                        status = "n/a"
                        message = (f"{len(anchors.items)} of {cell.anchors} anchor pairs survive the damage; "
                                   f"{cell.aligner} needs at least {aligner_cls.min_anchors}")
                    else:
                        metrics, timings = self._evaluate(cell, splits, anchors, damage)
            except AlignbenchError as exc:
                status, message = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - a broken plugin fails its cell, not the sweep
                log.debug("cell %s failed", cell.key, exc_info=True)
                status, message = "failed", f"{type(exc).__name__}: {exc}"
        recorded = dict(config)
        if anchors is not None:
            recorded["anchor_set"] = hashlib.sha256(anchors.items.tobytes() + anchors.texts.tobytes()).hexdigest()[:16]
        self.store.put(
            CellRecord(
                key=cell.key, dataset=cell.dataset, aligner=cell.aligner, anchors=cell.anchors, seed=cell.seed,
                status=status, config=recorded, metrics=metrics, timings=timings, environment=environment(),
                message=message, finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            )
        )
        return status, message

    def _evaluate(self, cell: Cell, splits: DatasetSplits, anchors: Anchors,
                  damage: Damage | None = None) -> tuple[dict[str, float], dict[str, float]]:
        config = cell.config
        aligner: Aligner = self.registry.create("aligner", cell.aligner, config["aligner"]["params"])
        timings = {}
        xu = yu = rows = None
        train = splits.train if damage is None else damage.train
        if aligner.uses_unpaired:
            kept = () if damage is None else (damage.kept_items, damage.kept_texts)
            rows = unpaired_rows(train, anchors, cell.seed, *kept)
            xu, yu = train.x[rows[0]], train.y[rows[1]]
        started = time.perf_counter()
        aligner.fit(anchors.x, anchors.y, xu, yu)
        timings["fit_s"] = time.perf_counter() - started
        started = time.perf_counter()
        test = splits.test
        if config.get("protocol") == "paper":
            test = gallery_with_anchors(test, anchors)
        zx, zy = aligner.transform_x(test.x), aligner.transform_y(test.y)
        timings["transform_s"] = time.perf_counter() - started
        result = AlignmentResult(test=test, zx=zx, zy=zy, anchors=anchors, aligner=aligner, train=train,
                                 unpaired_rows=rows)
        metrics: dict[str, float] = {}
        # Per metric, in order: work metrics share through the result (retrieval's similarity pass)
        # is charged to the first that asks for it.
        for described in config["metrics"]:
            started = time.perf_counter()
            metric: Metric = self.registry.create("metric", described["name"], described["params"])
            for key, value in metric.compute(result).items():
                if key in metrics:
                    raise AlignbenchError(f"metric {described['name']!r} reports {key!r}, which another metric reports too.")
                metrics[key] = float(value)
            timings[f"metric:{described['name']}_s"] = time.perf_counter() - started
        timings["metrics_s"] = sum(v for k, v in timings.items() if k.startswith("metric:"))
        return metrics, timings


def unpaired_items(train: PairedData, anchors: Anchors, seed: int, kept_items: np.ndarray | None = None,
                   kept_texts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings of :func:`unpaired_rows`: ``(xu, yu)``."""
    items, texts = unpaired_rows(train, anchors, seed, kept_items, kept_texts)
    return train.x[items], train.y[texts]


def unpaired_rows(train: PairedData, anchors: Anchors, seed: int, kept_items: np.ndarray | None = None,
                  kept_texts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The train items and texts that are not anchors (nor the other texts of an anchor item), as
    indices into the train split, each side shuffled on its own so that row order carries no pairing.
    ``kept_*``: the rows left after a drop perturbation (default: all)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    is_anchor = np.zeros(train.n_items, dtype=bool)
    is_anchor[anchors.items] = True
    kept_items = np.ones(train.n_items, dtype=bool) if kept_items is None else kept_items
    kept_texts = np.ones(train.n_texts, dtype=bool) if kept_texts is None else kept_texts
    items = np.flatnonzero(~is_anchor & kept_items)
    texts = np.flatnonzero(~is_anchor[train.text_item] & kept_texts)
    return rng.permutation(items), rng.permutation(texts)


def _group_by_dataset_and_seed(cells: list[Cell]) -> Iterator[tuple[tuple[str, int], list[Cell]]]:
    groups: dict[tuple[str, int], list[Cell]] = {}
    for cell in cells:
        key = (config_key({"d": cell.config["dataset"], "e": cell.config["encoders"],
                           "s": cell.config["anchor_strategy"], "p": cell.config.get("protocol")}), cell.seed)
        groups.setdefault(key, []).append(cell)
    # Level by level: the cells of one level share their unpaired rows, so aligners that do the
    # same aligner-independent work on them (fmap and fmap-spectral's eigenbases) find it done.
    for key, group in groups.items():
        yield key, sorted(group, key=lambda cell: cell.anchors)
