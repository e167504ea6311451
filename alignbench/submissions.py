"""Results files: a run's records exported by ``alignbench export``, submitted by third parties and
merged into the published site by ``alignbench publish --results``.

Schema ``alignbench-results/1`` (a JSON object; README "Publishing" documents it)::

    {"schema": "alignbench-results/1",
     "producer": {"name": "...", "url": "...", "contact": "...", "notes": "..."},   # name required
     "records": [{"key", "dataset", "aligner", "anchors", "seed", "status", "config", "metrics",
                  "environment", "message"}, ...]}                                 # one per cell

A record is a results-store row (alignbench.store.CellRecord) less its timings and finish time,
which are not results and would make two exports of the same cells differ. Validation is strict
because a submitted row sits beside the local ones: a file whose records could not have been made by
this alignbench (unknown metric version, a key that is not the hash of its config) or that would
make a mean mean something else (other seeds, one cell with two values) is rejected whole.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AlignbenchError, PluginLoadError, from_plugin
from .store import RUN_ENTRIES, STATUSES, CellRecord

SCHEMA = "alignbench-results/1"
RECORD_FIELDS = {"key": str, "dataset": str, "aligner": str, "anchors": int, "seed": int, "status": str,
                 "config": dict, "metrics": dict, "environment": dict, "message": str}
# Optional in a record (files written before it lack it): what the cell's fit chose.
OPTIONAL_FIELDS = {"fitted": dict}
PRODUCER_FIELDS = ("name", "url", "contact", "notes")
# Metric keys by the range their values live in; any other key must be finite.
UNIT_INTERVAL = re.compile(r"(R@\d+|MRR|mAP|accuracy|chance|ceiling|jaccard|mutual_knn)$")
NON_NEGATIVE = re.compile(r"(error|median_rank|matches_kept)")
RANK = re.compile(r"median_rank$")

log = logging.getLogger(__name__)


class SubmissionError(AlignbenchError):
    """A results file that cannot be merged; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class Submission:
    """A validated results file."""

    path: Path
    producer: dict[str, str]
    records: tuple[CellRecord, ...]


def known_metrics_of(registry) -> dict[str, type]:
    """Metric name -> its class in this installation: the version it computes, and the relations
    between its scores that a submitted cell must keep (``Metric.inconsistencies``). A metric that
    fails to load is left out with a warning: files that use it are rejected as using an unknown
    metric, and the others still publish."""
    known = {}
    for spec in registry.specs("metric"):
        try:
            known[spec.name] = registry.load("metric", spec.name)
        except PluginLoadError as exc:
            log.warning("%s", exc)
    return known


def export_payload(records: list[CellRecord], producer: dict[str, str]) -> dict[str, Any]:
    """The schema's object for ``records`` (sorted by key, so that the same cells give the same file)."""
    rows = [{name: getattr(r, name) for name in (*RECORD_FIELDS, *OPTIONAL_FIELDS)}
            for r in sorted(records, key=lambda r: r.key)]
    for row in rows:  # the store keeps NaN (a metric that does not apply), and an older store may hold an
        # infinity; strict JSON has neither, and null says "no number" for both
        row["metrics"] = {k: None if isinstance(v, float) and not math.isfinite(v) else v
                          for k, v in row["metrics"].items()}
    return {"schema": SCHEMA, "producer": {k: v for k, v in producer.items() if v}, "records": rows}


def write_export(records: list[CellRecord], producer: dict[str, str], out: Path) -> Path:
    if not records:
        raise SubmissionError("no records to export: the store holds no cells of the chosen datasets and aligners.")
    if not producer.get("name"):
        raise SubmissionError("name the producer (--name): submitted rows are shown with it.")
    if out.exists() and not _is_results_file(out):
        raise SubmissionError(f"{out} exists and is not a results file (a store, a folder, a pipe or device, another "
                              f"file); pass a new path, e.g. results/NAME.json: only an earlier export is overwritten.")
    try:
        text = json.dumps(export_payload(records, producer), indent=1, sort_keys=True, allow_nan=False)
    except ValueError:
        raise SubmissionError("a cell's configuration holds an infinite parameter, which a results file (strict "
                              "JSON) cannot hold; export the other cells (--aligner, --dataset), or give that "
                              "parameter a finite value.") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n", encoding="utf-8")
    return out


def _is_results_file(path: Path) -> bool:
    """Whether ``path`` is a file an export wrote (so writing over it loses nothing it did not copy)."""
    if not path.is_file():  # a pipe or a device is never one: reading it could block or never end
        return False
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(payload, dict) and payload.get("schema") == SCHEMA


def load_submission(path: Path, known_metrics: dict[str, type], seeds: list[int],
                    seen: dict[str, dict] | None = None) -> Submission:
    """Read and validate one results file.

    ``known_metrics``: metric name -> its class in this alignbench (:func:`known_metrics_of`). ``seeds``: the seeds every
    published cell group is averaged over. ``seen``: cell key -> metrics of cells already merged (from
    the store and earlier files); a key seen with other numbers is a conflict.
    Raises SubmissionError with one line naming the file.
    """
    try:
        payload = json.loads(path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except (OSError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: cannot be read ({exc}); submit a UTF-8 JSON file.") from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise SubmissionError(f"{path}: not valid JSON ({exc}); write it with `alignbench export`.") from None
    except RecursionError:
        raise SubmissionError(f"{path}: nested too deeply to read; write it with `alignbench export`.") from None
    try:
        producer, records = _check_schema(payload)
        records = _check_records(records, known_metrics, seeds, dict(seen or {}))
    except ValueError as exc:
        raise SubmissionError(f"{path}: {exc}") from None
    return Submission(path, producer, tuple(records))


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows; write missing values as null")


def _check_schema(payload: Any) -> tuple[dict[str, str], list[CellRecord]]:
    if not isinstance(payload, dict) or payload.get("schema") != SCHEMA:
        found = payload.get("schema") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"schema is {found!r}, this alignbench reads {SCHEMA!r}; write it with `alignbench export`.")
    producer = payload.get("producer")
    if not isinstance(producer, dict) or not isinstance(producer.get("name"), str) or not producer["name"].strip():
        raise ValueError('"producer" must be an object with a non-empty "name" (who made these results).')
    odd = sorted(k for k in producer if k not in PRODUCER_FIELDS or not isinstance(producer[k], str))
    if odd:
        raise ValueError(f"producer fields {odd} are unknown or not strings; use {', '.join(PRODUCER_FIELDS)}.")
    rows = payload.get("records")
    if not isinstance(rows, list) or not rows:
        raise ValueError('"records" must be a non-empty list of cells.')
    records = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ValueError(f"record {index} is not an object.")
        missing = [f for f in RECORD_FIELDS if f not in row]
        wrong = [f for f, kind in {**RECORD_FIELDS, **OPTIONAL_FIELDS}.items() if f in row and not is_json(row[f], kind)]
        if missing or wrong:
            raise ValueError(f"record {index} lacks {missing} / has wrong types for {wrong}; see the schema in README "
                             f"'Publishing'.")
        fitted = row.get("fitted", {})
        odd = sorted(k for k, v in fitted.items() if not _is_choice(v))
        if odd:
            raise ValueError(f"record {index}'s fitted {odd} are not finite numbers, strings or booleans; write the "
                             f"file with `alignbench export`.")
        records.append(CellRecord(**{f: row[f] for f in RECORD_FIELDS}, timings={}, finished_at="", fitted=fitted))
    return {k: producer[k] for k in sorted(producer)}, records


def _is_choice(value: Any) -> bool:
    return isinstance(value, (bool, int, str)) or (isinstance(value, float) and math.isfinite(value))


def is_json(value: Any, kind: type) -> bool:
    """isinstance, where a JSON true or false is no number."""
    return isinstance(value, kind) and not isinstance(value, bool)


def finite_number(value: Any) -> float | None:
    """A JSON number as a finite float; None for anything else (text, true/false, NaN, an infinity,
    an integer past float range), on which every table's arithmetic would fail or mislead."""
    if not (is_json(value, int) or is_json(value, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _check_records(records: list[CellRecord], known_metrics: dict[str, type], seeds: list[int],
                   seen: dict[str, dict]) -> list[CellRecord]:
    """The records to merge: every one checked; a cell already merged (earlier in the file, in an
    earlier file or in the store) with the same numbers is left out, so that it counts once."""
    from .registry import NAME_PATTERN
    from .runner import config_key  # numpy-heavy: imported only when a file is checked

    groups: dict[tuple, set[int]] = {}
    new = []
    for record in records:
        where = f"record {record.key[:12]} ({record.dataset} {record.aligner} anchors={record.anchors} seed={record.seed})"
        for kind, name in (("dataset", record.dataset), ("aligner", record.aligner)):
            if not NAME_PATTERN.fullmatch(name):
                raise ValueError(f"{where}: {kind} name {name!r} is not a plugin name ({NAME_PATTERN.pattern}); "
                                 f"export the store's records unchanged.")
        config = record.config
        if record.anchors < 0 or record.seed < 0:
            raise ValueError(f"{where}: anchors and seed must be >= 0.")
        if record.status not in STATUSES:
            raise ValueError(f"{where}: status {record.status!r} is not one of {', '.join(STATUSES)}.")
        if "split_sizes" in config and not valid_split_sizes(config["split_sizes"]):
            raise ValueError(f"{where}: split_sizes {str(config['split_sizes'])[:60]!r} is not "
                             f'{{"test": [items, texts], "train": [items, texts]}} with counts >= 0; export the '
                             f"store's records unchanged.")
        if problem := _config_problem(config):
            raise ValueError(f"{where}: config's {problem}; export the store's records unchanged.")
        try:
            names = (config["dataset"]["name"], config["aligner"]["name"], config["anchors"], config["seed"])
            metric_versions = [(m["name"], str(m["version"])) for m in config["metrics"]]
        except (KeyError, TypeError):
            raise ValueError(f"{where}: config lacks dataset/aligner names, anchors, seed or metrics with versions; "
                             f"export it with `alignbench export`.") from None
        if names != (record.dataset, record.aligner, record.anchors, record.seed):
            raise ValueError(f"{where}: its config describes {names}, not the record's own cell.")
        for name, version in metric_versions:
            known = str(known_metrics[name].version) if name in known_metrics else None
            if known != version:
                raise ValueError(f"{where}: metric {name} version {version} is not known here "
                                 f"({'no such metric' if known is None else f'version {known}'}); "
                                 f"re-run with this alignbench's metrics.")
        if unclaimed := _unclaimed_keys(record.metrics, [name for name, _ in metric_versions], known_metrics):
            raise ValueError(f"{where}: metrics {', '.join(unclaimed[:3])}{' ...' if len(unclaimed) > 3 else ''} "
                             f"are produced by none of its metrics ({', '.join(n for n, _ in metric_versions)}); "
                             f"export the store's records unchanged.")
        if record.key != config_key({k: v for k, v in config.items() if k not in RUN_ENTRIES}):
            raise ValueError(f"{where}: key is not the hash of its config (edited after the run?); export the "
                             f"store's records unchanged.")
        try:
            problem = _metric_problem(record.metrics) or next(
                (str(found) for name, _ in metric_versions for found in _inconsistencies(known_metrics[name], name,
                                                                                     record.metrics)), "")
        except PluginLoadError as exc:
            raise ValueError(f"{where}: {exc} Its scores cannot be checked; fix or uninstall that metric.") from None
        if problem:
            raise ValueError(f"{where}: {problem}")
        if record.status == "ok" and not any(v is not None for v in record.metrics.values()):
            raise ValueError(f"{where}: status ok but no metric; export the store's records unchanged.")
        if record.key in seen and seen[record.key] != record.metrics:
            raise ValueError(f"{where}: cell key {record.key} appears again with other numbers; one cell has one "
                             f"result, drop one of them.")
        if record.key in seen:
            continue
        seen[record.key] = record.metrics
        new.append(record)
        if record.status == "ok":
            group = json.dumps({k: v for k, v in config.items() if k != "seed" and k not in RUN_ENTRIES}, sort_keys=True)
            groups.setdefault((record.dataset, record.aligner, record.anchors, group), set()).add(record.seed)
    for (dataset, aligner, anchors, _), got in sorted(groups.items()):
        if sorted(got) != sorted(seeds):
            raise ValueError(f"{dataset} {aligner} at {anchors} anchors has seeds {sorted(got)}; published rows are "
                             f"means over seeds {','.join(map(str, seeds))} (run with --seeds "
                             f"{','.join(map(str, seeds))}).")
    return new


def _config_problem(config: dict[str, Any]) -> str:
    """What is wrong with the shape of a record's config (the parts the site shows), or ''."""
    return setting_problem(config) or _component_problem("aligner", config.get("aligner"))


def setting_problem(setting: dict[str, Any]) -> str:
    """What is wrong with the shape of a setting (a config's dataset, encoders, metrics, anchor strategy
    and protocol: what a leaderboard page shows of it), or ''."""
    if problem := _component_problem("dataset", setting.get("dataset")):
        return problem
    metrics = setting.get("metrics")
    if not isinstance(metrics, list):
        return f"metrics {repr(metrics)[:60]} is not a list"
    for metric in metrics:
        name = metric.get("name") if isinstance(metric, dict) else None
        label = f"metric {name!r}" if isinstance(name, str) else "metrics entry"
        if problem := _component_problem(label, metric, ("version",)):
            return problem
    encoders = setting.get("encoders", {})
    if not isinstance(encoders, dict):
        return f"encoders {repr(encoders)[:60]} is not an object"
    for modality, encoder in sorted(encoders.items()):
        if problem := _component_problem(f"{modality} encoder", encoder):
            return problem
    for what in ("anchor_strategy", "protocol"):
        if what in setting and not isinstance(setting[what], str):
            return f"{what} {repr(setting[what])[:60]} is not a string"
    return ""


def _component_problem(label: str, described: Any, required: tuple[str, ...] = ()) -> str:
    """What is wrong with a described component (``{"name", "params", "source", ...}``), or ''."""
    if not isinstance(described, dict):
        return f"{label} {repr(described)[:60]} is not an object"
    missing = [f for f in ("name", "params", "source", *required) if f not in described]
    if missing:
        return f"{label} lacks {', '.join(missing)}"
    if not isinstance(described["params"], dict):
        return f"{label} has params that is not an object"
    wrong = [f for f in ("name", "source") if not isinstance(described[f], str)]
    if "version" in described and not is_json(described["version"], int) and not isinstance(described["version"], str):
        wrong.append("version")
    if wrong:
        return f"{label} has {', '.join(wrong)} that is not a string"
    return ""


def _inconsistencies(metric: type, name: str, metrics: dict[str, Any]) -> list:
    """``metric.inconsistencies`` of a record's scores: a third party's code, which may raise."""
    return from_plugin(f"metric {name!r}", "failed in inconsistencies()",
                       lambda: list(metric.inconsistencies(dict(metrics))))


def _unclaimed_keys(metrics: dict[str, Any], listed: list[str], known_metrics: dict[str, type]) -> list[str]:
    """The keys of a record's metrics that none of its config's metrics declares (``Metric.direction``):
    scores of an unlisted metric would skip that metric's consistency checks. A listed metric that
    declares no keys may have made any key that no installed metric declares."""
    own = [known_metrics[name] for name in listed]
    undeclared = any(not metric.higher_is_better for metric in own)

    def claimed(key: str) -> bool:
        if any(metric.direction(key) is not None for metric in own):
            return True
        return undeclared and all(metric.direction(key) is None for metric in known_metrics.values())

    return sorted(key for key in metrics if not claimed(key))


def valid_split_sizes(value: Any) -> bool:
    """Whether a record's ``split_sizes`` is as a run stores it: two splits, two counts each."""
    return isinstance(value, dict) and set(value) == {"test", "train"} and all(
        isinstance(sizes, list) and len(sizes) == 2 and all(type(n) is int and n >= 0 for n in sizes)
        for sizes in value.values())


def _metric_problem(metrics: dict[str, Any]) -> str:
    """What is wrong with a record's metrics, or ''."""
    for name, value in sorted(metrics.items()):
        if value is None:
            continue  # a metric that does not apply to the cell (e.g. an error on zero anchors)
        if not is_json(value, int) and not isinstance(value, float):
            return f"metric {name} is {str(value)[:60]!r}, not a finite number or null."
        try:
            value = float(value)  # an int past 1e308 would raise in every comparison below
        except OverflowError:
            return f"metric {name} is an integer too large for a float; write the number the run stored."
        if not math.isfinite(value):
            return f"metric {name} is {value!r}, not a finite number or null."
        if UNIT_INTERVAL.search(name) and not 0.0 <= value <= 1.0:
            return f"metric {name} = {value} is outside [0, 1] (rates are fractions, not percent)."
        if NON_NEGATIVE.search(name) and value < 0:
            return f"metric {name} = {value} is negative."
        if RANK.search(name) and value < 1:
            return f"metric {name} = {value} is below 1 (ranks start at 1)."
    return ""
