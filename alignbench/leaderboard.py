"""Leaderboards derived from the results store; never edited by hand.

One file set per dataset (``<dataset>.md``, ``.csv``, ``.json``). Only runs that share every setting
that can move a number (dataset parameters, encoders, anchor strategy, metric versions, plugin
versions) share a table; a dataset run under several settings gets one section per setting.
Output is deterministic: the same results give byte-identical files (no timestamps, no timings).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from .store import RUN_ENTRIES, CellRecord, ResultStore

HEADLINE = "mean_R@1"
# Further headline tables, written when a board has the metric (class-level for class-captioned data).
EXTRA_HEADLINES = ("class_mean_R@1",)
SPLIT_KEYS = ("aligner", "anchors", "seed") + RUN_ENTRIES


@dataclass(frozen=True)
class Board:
    """The results of one dataset under one setting."""

    dataset: str
    setting: dict
    records: tuple[CellRecord, ...]

    @property
    def setting_id(self) -> str:
        return hashlib.sha256(json.dumps(self.setting, sort_keys=True).encode()).hexdigest()[:8]


def boards(records: list[CellRecord], split_keys: tuple[str, ...] = SPLIT_KEYS) -> list[Board]:
    """The records grouped by dataset and setting. Cells of the robustness suite (damaged train data)
    are left out unless ``perturbation`` is one of the ``split_keys``."""
    groups: dict[tuple[str, str], list[CellRecord]] = {}
    settings: dict[tuple[str, str], dict] = {}
    for record in records:
        if "perturbation" in record.config and "perturbation" not in split_keys:
            continue
        setting = {k: v for k, v in record.config.items() if k not in split_keys}
        key = (record.dataset, json.dumps(setting, sort_keys=True))
        groups.setdefault(key, []).append(record)
        settings[key] = setting
    return [Board(dataset, settings[(dataset, s)], tuple(groups[(dataset, s)])) for dataset, s in sorted(groups)]


def aligner_labels(board: Board) -> dict[str, str]:
    """Aligner config (JSON) -> label: the name, plus parameters where one name ran with several."""
    params_by_name: dict[str, set[str]] = {}
    for record in board.records:
        params_by_name.setdefault(record.aligner, set()).add(aligner_config(record))
    labels = {}
    for name, configs in params_by_name.items():
        for config in configs:
            if len(configs) == 1:
                labels[config] = name
            else:
                params = json.loads(config)["params"]
                labels[config] = f"{name}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"
    # One name and parameters from two versions or sources of the code (a plugin upgraded between
    # runs) are two rows, each named by what tells it apart, never one row averaging both.
    counts = Counter(labels.values())
    for config, label in labels.items():
        if counts[label] > 1:
            described = json.loads(config)
            labels[config] = f"{label} [{described.get('source', '?')}, version {described.get('version', 'none')}]"
    return labels


def aligner_config(record: CellRecord) -> str:
    """The aligner's configuration as a row key. An aligner's own ``seed`` that follows the cell's
    seed (the runner's default) is shown as such, so that its seeds share one row."""
    described = record.config["aligner"]
    params = described["params"]
    if "seed" in params and params["seed"] == record.seed:
        described = {**described, "params": {**params, "seed": "the cell's seed"}}
    return json.dumps(described, sort_keys=True)


def long_table(board: Board) -> pd.DataFrame:
    """One row per cell: aligner label, anchors, seed, status and every metric."""
    labels = aligner_labels(board)
    rows = []
    for r in board.records:
        rows.append({"aligner": labels[aligner_config(r)], "anchors": r.anchors, "seed": r.seed, "status": r.status,
                     **r.metrics})
    frame = pd.DataFrame(rows)
    return frame.sort_values(["aligner", "anchors", "seed"], kind="stable").reset_index(drop=True)


def headline_table(board: Board, metric: str = HEADLINE) -> pd.DataFrame:
    """Aligners x supervision levels: 'mean ± std' over seeds of ``metric`` in percent, with how
    many seeds it spans where others failed."""
    frame = long_table(board)
    levels = sorted(frame["anchors"].unique())
    table = {}
    best_at_top = {}
    for aligner, rows in frame.groupby("aligner", sort=True):
        cells = {}
        for level in levels:
            at = rows[rows["anchors"] == level]
            ok = at[at["status"] == "ok"]
            if len(ok) and metric in ok:
                values = 100 * ok[metric].to_numpy(dtype=float)
                std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                cells[str(level)] = f"{np.mean(values):.1f} ± {std:.1f}"
                failed = int((at["status"] == "failed").sum())
                if failed:  # a mean over the seeds that finished says so
                    cells[str(level)] += f" ({len(ok)} of {len(ok) + failed} seeds)"
                best_at_top[aligner] = float(np.mean(values))
            elif len(at) and (at["status"] == "failed").any():
                cells[str(level)] = "failed"
            else:
                cells[str(level)] = "n/a"
        table[aligner] = cells
    order = sorted(table, key=lambda a: (-best_at_top.get(a, -np.inf), a))
    out = pd.DataFrame.from_dict({a: table[a] for a in order}, orient="index")
    out.index.name = "aligner"
    return out


def matches_table(board: Board) -> pd.DataFrame:
    """Aligners that report ``match_accuracy`` x levels: 'accuracy% (chance c%, reachable r%), n kept',
    means over seeds (``reachable``: ``match_ceiling``, where the records have it)."""
    frame = long_table(board)
    if "match_accuracy" not in frame:
        return pd.DataFrame()
    ok = frame[(frame["status"] == "ok") & frame["match_accuracy"].notna()]
    table = {}
    for aligner, rows in ok.groupby("aligner", sort=True):
        columns = ["match_accuracy", "match_chance", "match_ceiling", "matches_kept"]
        means = rows.reindex(columns=["anchors", *columns]).groupby("anchors")[columns].mean()
        table[aligner] = {str(level): f"{100 * m.match_accuracy:.1f}% (chance {100 * m.match_chance:.1f}%"
                                      + (f", reachable {100 * m.match_ceiling:.1f}%" if np.isfinite(m.match_ceiling) else "")
                                      + f"), {m.matches_kept:.0f} kept" for level, m in means.iterrows()}
    out = pd.DataFrame.from_dict(table, orient="index").fillna("n/a")
    out.index.name = "aligner"
    return out


def fitted_cells(board: Board) -> list[dict]:
    """What each finished cell's fit chose (its record's ``fitted``), one dict per cell with its
    aligner label, anchors and seed, in table order."""
    labels = aligner_labels(board)
    cells = [{"aligner": labels[aligner_config(r)], "anchors": r.anchors, "seed": r.seed, "fitted": r.fitted}
             for r in board.records if r.status == "ok" and r.fitted]
    return sorted(cells, key=lambda c: (c["aligner"], c["anchors"], c["seed"]))


def fitted_table(board: Board) -> pd.DataFrame:
    """Aligner and choice x levels: each choice over the seeds (:func:`choices_over_seeds`)."""
    grid = choices_over_seeds((c["aligner"], c["anchors"], c["fitted"]) for c in fitted_cells(board))
    levels = sorted({level for by_level in grid.values() for level in by_level})
    return pd.DataFrame([{"aligner": row, "choice": key, **{str(lv): by_level.get(lv, "") for lv in levels}}
                         for (row, key), by_level in grid.items()])


def choices_over_seeds(cells: Iterable[tuple[str, Any, dict]]) -> dict[tuple[str, str], dict[Any, str]]:
    """``(row, choice) -> column -> text`` from ``(row, column, fitted)`` cells: each choice over the
    seeds of its row and column, as one value where every seed made the same, else its range (numbers),
    its values (strings) or how many seeds said yes (booleans). Rows in table order: by row, then
    ``dim`` first and the rest by name."""
    values: dict[tuple[str, str], dict[Any, list]] = {}
    for row, column, fitted in cells:
        for key, value in fitted.items():
            values.setdefault((row, key), {}).setdefault(column, []).append(value)
    order = sorted(values, key=lambda rk: (rk[0], rk[1] != "dim", rk[1]))
    return {rk: {column: over_seeds(seeds) for column, seeds in values[rk].items()} for rk in order}


def over_seeds(values: list) -> str:
    """One choice's values over seeds as a cell: the value where all agree, else the range of numbers
    (floats to 4 digits), the distinct values otherwise, or how many seeds said yes."""
    if not values:
        return ""
    if all(type(v) is bool for v in values):
        yes = sum(values)
        return "yes" if yes == len(values) else "no" if not yes else f"yes in {yes} of {len(values)}"
    if all(type(v) in (int, float) for v in values):
        low, high = (f"{v:.4g}" if isinstance(v, float) else str(v) for v in (min(values), max(values)))
        return low if low == high else f"{low} to {high}"
    return "/".join(dict.fromkeys(map(str, values)))


def summary_table(board: Board) -> pd.DataFrame:
    """Every metric, mean over seeds, per aligner and level (finished cells only)."""
    frame = long_table(board)
    ok = frame[frame["status"] == "ok"].drop(columns=["status"])
    if ok.empty:
        return ok
    grouped = ok.groupby(["aligner", "anchors"], sort=True)
    summary = grouped.mean(numeric_only=True).drop(columns=["seed"])
    summary = summary[sorted(summary.columns, key=_column_order)]
    summary.insert(0, "seeds", grouped.size())
    return summary.reset_index()


def _column_order(name: str) -> tuple[int, str]:
    """Retrieval first (image->text, then text->image), then everything else alphabetically."""
    for rank, prefix in enumerate(("mean_R@", "i2t_R@", "t2i_R@", "i2t_", "t2i_")):
        if name.startswith(prefix):
            return rank, name.zfill(12) if "@" in name else name
    return 9, name


def render_markdown(board_list: list[Board], metric: str = HEADLINE) -> str:
    dataset = board_list[0].dataset
    lines = [f"# Leaderboard: {dataset}", "",
             "Generated by `alignbench leaderboard` from the results store. Do not edit by hand.", ""]
    for board in board_list:
        setting = board.setting
        if len(board_list) > 1:
            lines += [f"## Setting {board.setting_id}", ""]
        seeds = sorted({r.seed for r in board.records})
        lines += [
            f"- dataset: `{setting['dataset']['name']}` {json.dumps(setting['dataset']['params'], sort_keys=True)}",
            f"- encoders: {_encoders(setting)}",
            f"- anchors: {setting['anchor_strategy']} selection from the train split, nested across levels; "
            f"seeds {', '.join(map(str, seeds))}",
            *splits_line(board.records, setting.get("protocol")),
            "- spread: each seed draws its own anchors, unpaired order and aligner randomness (an aligner's `seed` "
            "follows the cell's); the data are the same in every seed (the dataset's parameters, its own `seed` "
            "included, are fixed), so ± is the spread over those draws, not over datasets",
            f"- metrics: {', '.join(m['name'] + ' v' + m['version'] for m in setting['metrics'])}",
            "",
            f"### {metric} (%), mean ± std over seeds; columns are anchor pairs",
            "",
            tabulate(headline_table(board, metric), headers="keys", tablefmt="github", disable_numparse=True),
            "",
        ]
        for extra in EXTRA_HEADLINES:
            if any(extra in r.metrics for r in board.records):
                lines += [f"### {extra} (%), mean ± std over seeds; columns are anchor pairs", "",
                          tabulate(headline_table(board, extra), headers="keys", tablefmt="github",
                                   disable_numparse=True), ""]
        matches = matches_table(board)
        if not matches.empty:
            lines += ["### Matches found beyond the anchors (correspondence metric, mean over seeds)", "",
                      "Per cell: the share of the aligner's own matches between unpaired items that are right, "
                      "the share a random match would get, the share whose right partner was among the rows the "
                      "aligner chose from (its graph, its sample: no match outside them can be right; a one-to-one "
                      "matching may reach fewer), and how many matches the final map used. Where none are used, "
                      "the row measures the map fitted on the anchors alone; where they are at chance, the anchors "
                      "plus that many wrong pairs.", "",
                      tabulate(matches, headers="keys", tablefmt="github", disable_numparse=True), ""]
        fitted = fitted_table(board)
        if not fitted.empty:
            lines += ["### What the fit chose (over seeds)", "",
                      "Per cell, what each aligner's fit decided that its parameters do not fix (see its "
                      "`fit_report`): `dim` is the width of the comparison space, the rest are the aligner's "
                      "own. One value where every seed gave it, else the range over seeds. A row whose "
                      "choices change along it compares different models across its columns.", "",
                      tabulate(fitted, headers="keys", tablefmt="github", disable_numparse=True, showindex=False),
                      ""]
        lines += [
            "### All metrics (mean over seeds)",
            "",
            tabulate(summary_table(board), headers="keys", tablefmt="github", floatfmt=".4g", showindex=False),
            "",
            "### Aligner parameters",
            "",
        ]
        lines += aligner_parameter_lines(board) + [""]
    return "\n".join(lines)


def split_sizes(records: Iterable[CellRecord]) -> list[dict]:
    """The distinct split sizes the records' runs saw (``{"test": [items, texts], "train": [...]}``;
    one for records of one setting), none where no record has them (stored before they were kept)."""
    sizes = {json.dumps(r.config["split_sizes"], sort_keys=True) for r in records if "split_sizes" in r.config}
    return [json.loads(recorded) for recorded in sorted(sizes)]


def splits_text(sizes: list[dict], protocol: str | None = None) -> str:
    """What a retrieval ranked among, the R@1 a random ranking gets there, and the train pool ("" for
    no sizes). Under the paper protocol each level's anchor pairs join the gallery (see protocols)."""
    parts = []
    for split in sizes:
        (test_items, test_texts), (train_items, train_texts) = split["test"], split["train"]
        # Image->text: an image's own texts among all texts, 1/items on average; text->image: 1/items.
        chance = f"{100 / test_items:.2g}%" if test_items else "n/a"
        parts.append(f"test {test_items:,} items and {test_texts:,} texts (a random ranking's mean R@1: {chance}); "
                     f"train {train_items:,} items and {train_texts:,} texts, the pool the anchors are drawn from")
    paper = "; paper protocol: each level's anchor pairs join the test gallery, and chance falls with them" \
        if parts and protocol == "paper" else ""
    return " | ".join(parts) + paper


def splits_line(records: Iterable[CellRecord], protocol: str | None = None) -> list[str]:
    """``- splits: ...`` (:func:`splits_text`), or no line where no record has its sizes."""
    text = splits_text(split_sizes(records), protocol)
    return [f"- splits: {text}"] if text else []


def aligner_parameter_lines(board: Board) -> list[str]:
    """One Markdown bullet per aligner configuration: its label, parameters and source."""
    lines = []
    for config, label in sorted(aligner_labels(board).items(), key=lambda kv: kv[1]):
        described = json.loads(config)
        lines.append(f"- `{label}`: {json.dumps(described['params'], sort_keys=True)} ({described['source']})")
    return lines


def _encoders(setting: dict) -> str:
    encoders = setting.get("encoders") or {}
    if not encoders:
        return "none (the dataset provides embeddings)"
    return ", ".join(f"{modality}: `{e['name']}` {json.dumps(e['params'], sort_keys=True)}"
                     for modality, e in sorted(encoders.items()))


def write_leaderboards(store: ResultStore, out_dir: str | Path, datasets: list[str] | None = None,
                       metric: str = HEADLINE) -> list[Path]:
    """Write ``<dataset>.md/.csv/.json`` for each dataset in the store (or those named)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for dataset, board_list in by_dataset(boards(store.records()), datasets):
        frames, fitted = [], []
        for board in board_list:
            frame = long_table(board)
            frame.insert(0, "setting", board.setting_id)
            frames.append(frame)
            fitted += [{"setting": board.setting_id, **cell, "fitted": six_digits(cell["fitted"])}
                       for cell in fitted_cells(board)]
        frame = pd.concat(frames, ignore_index=True)
        payload = {"dataset": dataset, "headline": metric,
                   "settings": {b.setting_id: b.setting for b in board_list},
                   "split_sizes": {b.setting_id: split_sizes(b.records) for b in board_list},
                   "cells": json.loads(frame.to_json(orient="records", double_precision=6)),
                   "fitted": fitted}
        written += write_files(out_dir / dataset, render_markdown(board_list, metric), frame, payload)
    return written


def by_dataset(board_list: list, datasets: list[str] | None) -> list[tuple[str, list]]:
    """Boards (anything with a ``dataset``) grouped by dataset, sorted; only the named datasets if given."""
    groups: dict[str, list] = {}
    for board in board_list:
        if datasets is None or board.dataset in datasets:
            groups.setdefault(board.dataset, []).append(board)
    return sorted(groups.items())


def six_digits(choices: dict) -> dict:
    """Floats to 6 significant digits, as the tables' numbers are written: the same on every CPU."""
    return {k: float(f"{v:.6g}") if isinstance(v, float) else v for k, v in choices.items()}


def write_files(stem: Path, markdown: str, frame: pd.DataFrame, payload: dict) -> list[Path]:
    """``stem.md``, ``stem.csv`` (6 significant digits) and ``stem.json`` (sorted keys): byte-stable."""
    md, csv, js = (stem.with_name(stem.name + suffix) for suffix in (".md", ".csv", ".json"))
    md.write_text(markdown, encoding="utf-8")
    frame.to_csv(csv, index=False, float_format="%.6g")
    js.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return [md, csv, js]
