"""The plan stage: a Sweep becomes a list of typed cells, every name and parameter resolved first.

A cell's key is a hash of its ``config``, the nested record of everything that can move its numbers
(effective parameters after defaults, plugin sources, metric versions, anchor strategy, protocol,
damage). The keys are the identity of every stored result and of the committed leaderboards' cells:
the config is built exactly as it always was, and the typed fields beside it are read from it once,
here, so that later stages never dig into ``config["aligner"]["params"]``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from .errors import InvalidParameterError, PluginLoadError, from_plugin
from .protocols import PROTOCOLS
from .registry import Registry
from .robustness import ITEM_STREAMS, check_fraction, check_perturbation
from .supervision import STRATEGIES

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
class Component:
    """A resolved plugin: its name and its effective parameters (after defaults)."""

    name: str
    params: Params


@dataclass(frozen=True)
class DamageSpec:
    """A perturbation at one damage fraction. ``stage``: drop, input or embedding; ``fraction``: percent
    of one modality's train rows; ``identity``: what names its corrupted inputs (for input-stage ones)."""

    name: str
    params: Params
    stage: str
    fraction: int
    identity: str


@dataclass(frozen=True)
class Cell:
    """One unit of work: an aligner on a dataset at a supervision level and seed (and maybe damage).

    ``config`` is the recorded identity (its hash is ``key``); the other fields are typed views of it.
    ``data_key`` names the loaded dataset the cell reads (dataset, encoders, protocol): cells with the
    same one share their splits; ``group`` adds the anchor strategy: cells of one group and seed share
    their anchors.
    """

    dataset: str
    aligner: str
    anchors: int
    seed: int
    config: dict[str, Any]
    perturbation: str = ""  # "name(modality) p%" for a damaged cell, "" for a clean one
    aligner_params: Params = field(default_factory=dict)
    metrics: tuple[Component, ...] = ()
    protocol: str = "standard"
    damage: DamageSpec | None = None

    @property
    def key(self) -> str:
        return config_key(self.config)

    @property
    def data_key(self) -> str:
        return config_key({"dataset": self.config["dataset"], "encoders": self.config["encoders"],
                           "protocol": self.protocol})

    @property
    def group(self) -> str:
        config = self.config
        return config_key({"d": config["dataset"], "e": config["encoders"], "s": config["anchor_strategy"],
                           "p": config.get("protocol")})


def config_key(config: dict[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)  # in a fixed order: a set's own order of strings changes from process to process
    raise TypeError(f"cannot record {type(value).__name__} in a result config")


def plan_cells(registry: Registry, sweep: Sweep) -> list[Cell]:
    """All cells of the sweep. Resolves every name and parameter first, so that a typo fails before
    any work is done."""
    check_sweep(sweep)
    validate_components(registry, sweep)
    metrics = [describe(registry, "metric", n, p) for n, p in sweep.metrics]
    typed_metrics = tuple(Component(m["name"], m["params"]) for m in metrics)
    damages = plan_damage(registry, sweep)
    cells = []
    for dataset_name, dataset_params in sweep.datasets:
        # After plan_damage's own checks of each perturbation: a raw-item corruption of a dataset of embeddings.
        raw_only = [damage["name"] for damage in damages if damage["stage"] == "input"]
        if raw_only and not registry.load("dataset", dataset_name).raw:
            raise InvalidParameterError(
                f"{raw_only[0]} corrupts raw items before they are encoded, and {dataset_name} holds "
                f"embeddings; drop one of them, or damage embeddings (embedding-noise).")
        dataset = describe(registry, "dataset", dataset_name, dataset_params)
        encoders = encoders_for(registry, dataset_name, sweep.encoders)
        for aligner_name, aligner_params in sweep.aligners:
            aligner = describe(registry, "aligner", aligner_name, aligner_params)
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
                    typed = {"aligner_params": cell_aligner["params"], "metrics": typed_metrics,
                             "protocol": sweep.protocol}
                    cells.append(Cell(dataset_name, aligner_name, int(level), int(seed), config, **typed))
                    for damage in damages:  # clean cells keep their keys: damaged ones add a field
                        label = f"{damage['name']}({damage['params']['modality']}) {damage['fraction']}%"
                        spec = DamageSpec(damage["name"], damage["params"], damage["stage"], damage["fraction"],
                                          config_key(perturbation_identity(damage)))
                        cells.append(Cell(dataset_name, aligner_name, int(level), int(seed),
                                          {**config, "perturbation": damage}, label, damage=spec, **typed))
    return cells


def check_sweep(sweep: Sweep) -> None:
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
    for what, values in (("supervision level", sweep.levels), ("seed", sweep.seeds),
                         ("metric", [name for name, _ in sweep.metrics])):
        if twice := sorted({v for v in values if values.count(v) > 1}, key=str):
            raise InvalidParameterError(f"{what} {', '.join(map(str, twice))} is given twice; give each once.")


def validate_components(registry: Registry, sweep: Sweep) -> None:
    """Impossible parameter values, before any work: every component whose class defines
    ``validate()`` checks itself (raising InvalidParameterError or InvalidInputError), and a
    perturbation must damage a modality of every dataset (``modalities`` on the dataset class,
    default image and text)."""
    chosen = [("dataset", sweep.datasets), ("aligner", sweep.aligners), ("metric", sweep.metrics),
              ("encoder", list(sweep.encoders.values())), ("perturbation", sweep.perturbations)]
    for kind, components in chosen:
        for name, params in components:
            component = registry.create(kind, name, params)
            validate = getattr(component, "validate", None)
            if callable(validate):
                from_plugin(f"{kind} {name!r}", "failed in validate()", validate)
            modality = getattr(component, "modality", None) if kind == "perturbation" else None
            for dataset_name, _ in sweep.datasets if modality is not None else ():
                modalities = getattr(registry.load("dataset", dataset_name), "modalities", ("image", "text"))
                if modality not in modalities:
                    raise InvalidParameterError(
                        f"perturbation {name!r} damages {modality!r}, but {dataset_name} holds "
                        f"{' and '.join(modalities)}; write e.g. --perturbation {name}:{modalities[0]}.")


def plan_damage(registry: Registry, sweep: Sweep) -> list[dict[str, Any]]:
    if sweep.perturbations and sweep.protocol != "standard":
        raise InvalidParameterError("the robustness suite runs under the standard protocol only.")
    if sweep.perturbations and not sweep.fractions:
        raise InvalidParameterError("perturbations need damage fractions, e.g. --fractions 20,40,60,80.")
    for percent in sweep.fractions:
        check_fraction(percent)
    damages = []
    for name, params in sweep.perturbations:
        described = describe(registry, "perturbation", name, params)
        check_perturbation(registry.create("perturbation", name, params))
        described["stage"] = registry.load("perturbation", name).stage
        if described["stage"] == "input":
            described["item_streams"] = ITEM_STREAMS
        damages += [{**described, "fraction": int(p)} for p in sorted(set(sweep.fractions))]
    return damages


def perturbation_identity(damage: dict[str, Any]) -> dict[str, Any]:
    """What makes a described perturbation's damage what it is, whatever the fraction: the key of its
    corrupted copies (in memory and in the embedding cache)."""
    return {k: damage[k] for k in ("name", "params", "source", "version", "item_streams") if k in damage}


def encoders_for(registry: Registry, dataset: str, chosen: dict[str, tuple[str, Params]]) -> dict[str, Any]:
    """The encoders a dataset's cells use: none for embedded datasets (so they never enter its cells'
    keys), the chosen ones or the dataset's defaults for raw ones."""
    dataset_cls = registry.load("dataset", dataset)
    if not dataset_cls.raw:
        return {}
    encoders = {m: (n, {}) for m, n in dataset_cls.default_encoders.items()} | dict(chosen)
    return {m: describe(registry, "encoder", n, p) for m, (n, p) in sorted(encoders.items())}


def describe(registry: Registry, kind: str, name: str, params: Params) -> dict[str, Any]:
    spec = registry.get(kind, name)
    instance = registry.create(kind, name, params)
    label = f"{kind} {name!r}"
    described = {"name": name, "params": from_plugin(label, "failed in get_params()", instance.get_params),
                 "source": spec.source}
    if type(instance).version is not None:  # every metric has one; other kinds once their code changed
        described["version"] = type(instance).version
    if kind == "encoder" and (pin := from_plugin(label, "failed in weights_pin()", instance.weights_pin)) is not None:
        described["weights"] = pin
    try:
        # As the results store and an export will read them back (numpy scalars as numbers, sets as
        # lists), so that every later stage sees what was recorded; the key is that of the same JSON.
        described["params"] = json.loads(json.dumps(described["params"], default=_json_default))
        config_key(described)
    except (TypeError, ValueError) as exc:
        raise PluginLoadError(f"{label}: its parameters cannot be recorded in a result's key ({exc}); give "
                              f"them as numbers, strings, booleans, lists or dicts.") from None
    if _holds_nan(described["params"]):  # infinity is a limit ("no cap"); NaN names no setting, nor equals itself
        raise PluginLoadError(f"{label}: a parameter is NaN, which names no setting; give it a number (or None).")
    return described


def _holds_nan(value: Any) -> bool:
    if isinstance(value, float):
        return value != value
    if isinstance(value, dict):
        return any(_holds_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_nan(v) for v in value)
    return False


def batches(cells: list[Cell]) -> Iterator[tuple[tuple[str, int], list[Cell]]]:
    """Cells by (group, seed), each group level by level: the cells of one level share their unpaired
    rows, so aligners that do the same aligner-independent work on them (fmap and fmap-spectral's
    eigenbases) find it done in the in-memory memo."""
    groups: dict[tuple[str, int], list[Cell]] = {}
    for cell in cells:
        groups.setdefault((cell.group, cell.seed), []).append(cell)
    for key, group in groups.items():
        yield key, sorted(group, key=lambda cell: cell.anchors)
