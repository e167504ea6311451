"""Robustness tables: retrieval when the train data is damaged, and its relative drop from the clean run.

One file set per dataset (``<dataset>-robustness.md``, ``.csv``, ``.json``), written from the results
store like the leaderboards and just as deterministic. A damaged cell is compared with the clean cell
of the same setting, aligner, supervision level and seed; the table shows the mean over seeds and the
relative drop ``(clean - damaged) / clean`` of those means.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from .plan import perturbation_identity
from .leaderboard import (EXTRA_HEADLINES, HEADLINE, SPLIT_KEYS, Board, aligner_config, aligner_labels, splits_line,
                          aligner_parameter_lines, boards, by_dataset, over_seeds, six_digits, write_files)
from .store import CellRecord, ResultStore

CLEAN = "clean"
# Seed 001's hypothesis: under 50% masking of one modality, geometric losses lose at most 10% of their
# accuracy while the contrastive-only loss loses at least 30%.
CLAIM_FRACTION = 50
CLAIM_GEOMETRIC = ("ot-riemannian", "ot-riemannian-ot", "ot-riemannian-riem")
CLAIM_CONTRASTIVE = ("ot-riemannian-contrastive",)
CLAIM_GEOMETRIC_MAX_DROP = 0.10
CLAIM_CONTRASTIVE_MIN_DROP = 0.30
# A half of the claim is decided only where each drop is this many standard errors (over seeds) clear of
# its bound: on a near-chance score (Fashion-MNIST's instance recall, 0.4%) a 10% drop is noise.
CLAIM_ERRORS = 2


@dataclass(frozen=True)
class RobustnessBoard:
    """The damaged cells of one dataset under one setting, with their clean counterparts."""

    board: Board
    clean: tuple[CellRecord, ...]

    @property
    def dataset(self) -> str:
        return self.board.dataset

    @property
    def with_clean(self) -> Board:
        """The damaged and the clean cells as one board (aligner labels are given over both)."""
        return Board(self.dataset, self.board.setting, self.board.records + self.clean)

    @cached_property
    def labels(self) -> dict[str, str]:
        return perturbation_labels(self.board.records)

    def label(self, damage: dict) -> str:
        """A damaged cell's perturbation row label (see :func:`perturbation_labels`)."""
        return self.labels[damage_identity(damage)]


def perturbation_label(damage: dict) -> str:
    return f"{damage['name']}({damage['params'].get('modality', '?')})"


def damage_identity(damage: dict) -> str:
    """What a damage is, whatever its fraction (JSON): its perturbation's identity and stage."""
    return json.dumps({**perturbation_identity(damage), "stage": damage.get("stage")}, sort_keys=True)


def perturbation_labels(records) -> dict[str, str]:
    """Damage identity -> row label: ``name(modality)``, plus its parameters where one name and
    modality ran with several, plus source, version and item streams where even those agree (a
    perturbation's code changed between runs): two rows, never one averaging both."""
    identities: dict[str, set[str]] = {}
    for record in records:
        if (damage := record.config.get("perturbation")) is not None:
            identities.setdefault(perturbation_label(damage), set()).add(damage_identity(damage))
    labels = {}
    for label, found in identities.items():
        for identity in found:
            params = {k: v for k, v in json.loads(identity)["params"].items() if k != "modality"}
            labels[identity] = label if len(found) == 1 else \
                f"{label[:-1]}; {', '.join(f'{k}={v}' for k, v in sorted(params.items()))})"
    counts = Counter(labels.values())
    for identity, label in labels.items():
        if counts[label] > 1:
            described = json.loads(identity)
            labels[identity] = (f"{label} [{described.get('source', '?')}, version {described.get('version', 'none')}, "
                                f"item streams {described.get('item_streams', 1)}]")
    return labels


def _listing_order(identity: str) -> tuple[str, str]:
    """Perturbations listed by name, parameters and source, ties (another version, other item streams)
    broken by the whole identity, so that the list never follows a set's hash order."""
    damage = json.loads(identity)
    return json.dumps({k: damage[k] for k in ("name", "params", "source")}, sort_keys=True), identity


def robustness_boards(records: list[CellRecord]) -> list[RobustnessBoard]:
    damaged = boards(records, split_keys=SPLIT_KEYS + ("perturbation",))
    clean = [r for r in records if "perturbation" not in r.config]
    out = []
    for board in damaged:
        mine = [r for r in board.records if "perturbation" in r.config]
        if not mine:
            continue
        # The clean runs of the damaged aligners, levels and seeds only: what else the store holds
        # (the main sweep's other aligners, or other seeds) is no baseline and must not move the tables.
        damaged_runs = {(aligner_config(r), r.anchors, r.seed) for r in mine}
        baseline = tuple(r for r in clean if r.dataset == board.dataset
                         and (aligner_config(r), r.anchors, r.seed) in damaged_runs
                         and {k: v for k, v in r.config.items() if k not in SPLIT_KEYS} == board.setting)
        out.append(RobustnessBoard(Board(board.dataset, board.setting, tuple(mine)), baseline))
    return out


def long_table(rboard: RobustnessBoard) -> pd.DataFrame:
    """One row per cell, clean ones included: aligner, perturbation, fraction (%), anchors, seed,
    status and every metric."""
    everything = rboard.with_clean
    labels = aligner_labels(everything)
    rows = []
    for r in everything.records:
        damage = r.config.get("perturbation")
        rows.append({"aligner": labels[aligner_config(r)],
                     "perturbation": rboard.label(damage) if damage else CLEAN,
                     "fraction": damage["fraction"] if damage else 0,
                     "anchors": r.anchors, "seed": r.seed, "status": r.status, **r.metrics})
    frame = pd.DataFrame(rows)
    return frame.sort_values(["aligner", "anchors", "perturbation", "fraction", "seed"], kind="stable") \
        .reset_index(drop=True)


def drop_table(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per aligner, anchors, perturbation and fraction: the mean of ``metric`` over the seeds whose
    damaged and clean cells both finished (``seeds`` of them), the clean mean over the same seeds,
    the relative drop ``1 - value / clean`` and its standard error over seeds (``drop_error``: the
    spread of each seed's own drop against its clean run, ``sd / sqrt(seeds)``, the seeds being paired
    through their anchors; NaN under two seeds). A seed whose clean cell failed is left out of both
    means (a mean over other seeds is no baseline). Rows without any clean run keep the mean over
    their finished seeds and get no drop."""
    columns = ["aligner", "anchors", "perturbation", "fraction", "seeds", "value", "clean", "relative_drop",
               "drop_error"]
    ok = _with_number(frame, metric)
    if ok is None:
        return pd.DataFrame(columns=columns)
    clean = ok[ok["perturbation"] == CLEAN][["aligner", "anchors", "seed", metric]]
    damaged = ok[ok["perturbation"] != CLEAN].merge(clean.rename(columns={metric: "clean"}),
                                                    on=["aligner", "anchors", "seed"], how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        damaged["seed_drop"] = np.where(damaged["clean"] > 0, 1 - damaged[metric] / damaged["clean"], np.nan)
    rows = ["aligner", "anchors", "perturbation", "fraction"]
    # Where some seed has a clean run, only such seeds count; elsewhere every finished seed does.
    has_clean = damaged.groupby(rows, sort=False)["clean"].transform(lambda c: c.notna().any())
    damaged = damaged[damaged["clean"].notna() | ~has_clean]
    out = damaged.groupby(rows, sort=True).agg(
        seeds=(metric, "size"), value=(metric, "mean"), clean=("clean", "mean"),
        drop_error=("seed_drop", _standard_error)).reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["relative_drop"] = np.where(out["clean"] > 0, 1 - out["value"] / out["clean"], np.nan)
    return out[columns]


def _standard_error(values: pd.Series) -> float:
    """``sd / sqrt(n)`` of the finite values; NaN under two."""
    n = values.count()
    return float(values.std(ddof=1) / np.sqrt(n)) if n >= 2 else float("nan")


def clean_table(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per aligner and anchors: the clean run's mean of ``metric`` over its finished seeds, and how many."""
    ok = _with_number(frame, metric)
    if ok is None:
        return pd.DataFrame(columns=["aligner", "anchors", "seeds", "clean"])
    return ok[ok["perturbation"] == CLEAN].groupby(["aligner", "anchors"], sort=True) \
        .agg(seeds=(metric, "size"), clean=(metric, "mean")).reset_index()


def _with_number(frame: pd.DataFrame, metric: str) -> pd.DataFrame | None:
    """The finished cells that report ``metric`` (None where no cell of the table has it)."""
    ok = frame[frame["status"] == "ok"]
    return ok[ok[metric].notna()] if metric in ok else None


def wide_table(drops: pd.DataFrame, anchors: int, clean: pd.DataFrame, seeds: int) -> pd.DataFrame:
    """Aligner x perturbation rows, one column per fraction: 'value (-drop%)', values in percent; the
    clean column from :func:`clean_table`. A mean over fewer than the board's ``seeds`` (a cell n/a or
    failed, damaged or clean) says over how many; a drop is always against the clean run of its own
    seeds (:func:`drop_table`)."""
    at = drops[drops["anchors"] == anchors]
    fractions = sorted(at["fraction"].unique())
    baseline = clean[clean["anchors"] == anchors].set_index("aligner")

    def fewer(count) -> str:
        return f"{int(count)} of {seeds} seeds" if count < seeds else ""

    rows = {}
    for (aligner, perturbation), group in at.groupby(["aligner", "perturbation"], sort=True):
        if aligner in baseline.index:
            base = baseline.loc[aligner]
            note = fewer(base["seeds"])
            row = {CLEAN: _percent(base["clean"]) + (f" ({note})" if note else "")}
        else:
            row = {CLEAN: "n/a"}
        by_fraction = group.set_index("fraction")
        for fraction in fractions:
            if fraction in by_fraction.index:
                item = by_fraction.loc[fraction]
                note = fewer(item["seeds"])
                row[f"{fraction}%"] = f"{_percent(item['value'])} ({_signed(item['relative_drop'])}" \
                                      f"{'; ' + note if note else ''})"
            else:
                row[f"{fraction}%"] = "n/a"
        rows[(aligner, perturbation)] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    if not out.empty:
        out.index = pd.MultiIndex.from_tuples(out.index, names=["aligner", "perturbation"])
        out = out.reset_index()
    return out


def fitted_table(rboard: RobustnessBoard, anchors: int) -> pd.DataFrame:
    """Aligner, perturbation and choice x the clean run and each fraction: what the fits chose at
    ``anchors`` pairs (over seeds, read as in the leaderboards), only the choices that change along
    their row: there the row's columns are different models (fewer anchor pairs left after a drop, a
    lower rank), not one model on worse data. A clean cell had all its ``anchors`` pairs."""
    everything = rboard.with_clean
    labels = aligner_labels(everything)
    clean: dict[tuple[str, str], list] = {}  # (aligner, choice) -> values over seeds
    damaged: dict[tuple[str, str, str], dict[str, list]] = {}  # (aligner, perturbation, choice) -> column -> values
    for r in everything.records:
        if r.status != "ok" or r.anchors != anchors:
            continue
        label, damage = labels[aligner_config(r)], r.config.get("perturbation")
        if damage is None:
            for key, value in {**r.fitted, "anchor_pairs": r.anchors}.items():
                clean.setdefault((label, key), []).append(value)
            continue
        for key, value in r.fitted.items():
            row = damaged.setdefault((label, rboard.label(damage), key), {})
            row.setdefault(f"{damage['fraction']}%", []).append(value)
    fractions = sorted({column for row in damaged.values() for column in row}, key=lambda c: int(c[:-1]))
    rows = []
    order = sorted(damaged, key=lambda row: (row[0], row[1], row[2] != "anchor_pairs", row[2]))
    for aligner, perturbation, key in order:
        row = damaged[(aligner, perturbation, key)]
        cells = {CLEAN: over_seeds(clean[(aligner, key)]) if (aligner, key) in clean else "",
                 **{column: over_seeds(row[column]) if column in row else "" for column in fractions}}
        if len({text for text in cells.values() if text}) > 1:  # a column without a finished cell is no change
            rows.append({"aligner": aligner, "perturbation": perturbation, "choice": key, **cells})
    return pd.DataFrame(rows)


def fitted_cells(rboard: RobustnessBoard) -> list[dict]:
    """What each finished damaged cell's fit chose, with its aligner, perturbation, fraction, anchors
    and seed (floats to 6 digits, as the tables' numbers), in table order."""
    labels = aligner_labels(rboard.with_clean)
    cells = [{"aligner": labels[aligner_config(r)], "perturbation": rboard.label(r.config["perturbation"]),
              "fraction": r.config["perturbation"]["fraction"], "anchors": r.anchors, "seed": r.seed,
              "fitted": six_digits(r.fitted)} for r in rboard.board.records if r.status == "ok" and r.fitted]
    return sorted(cells, key=lambda c: (c["aligner"], c["anchors"], c["perturbation"], c["fraction"], c["seed"]))


def _encoders(encoders: dict) -> str:
    return ", ".join(f"{modality}: `{e['name']}`" for modality, e in sorted(encoders.items())) or "none (embeddings)"


def _percent(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{100 * value:.1f}"


def _signed(drop: float) -> str:
    if not np.isfinite(drop):
        return "n/a"
    change = round(-100 * drop)
    return f"{change:+d}%" if change else "0%"


@dataclass(frozen=True)
class ClaimCheck:
    """Seed 001's claim checked on one perturbation, supervision level and metric."""

    perturbation: str
    anchors: int
    metric: str
    geometric: dict[str, float]
    contrastive: dict[str, float]
    errors: dict[str, float]  # each drop's standard error over seeds (NaN: one seed)

    def _margin(self, aligner: str) -> float:
        error = self.errors.get(aligner, np.nan)
        return CLAIM_ERRORS * error if np.isfinite(error) else np.inf

    def _decided(self, drops: dict[str, float], bound: float, side: int) -> bool | None:
        """True when every drop lies on the claim's side of ``bound`` (``side`` -1: at most, +1: at least)
        by at least its error margin, False when one lies on the other side by more, None otherwise."""
        clear = {a: side * (d - bound) for a, d in drops.items()}  # > 0 on the claim's side
        if any(-c > self._margin(a) for a, c in clear.items()):
            return False
        return True if all(c >= self._margin(a) for a, c in clear.items()) else None

    @property
    def geometric_holds(self) -> bool | None:
        return self._decided(self.geometric, CLAIM_GEOMETRIC_MAX_DROP, -1)

    @property
    def contrastive_holds(self) -> bool | None:
        return self._decided(self.contrastive, CLAIM_CONTRASTIVE_MIN_DROP, +1)

    @property
    def holds(self) -> bool | None:
        halves = (self.geometric_holds, self.contrastive_holds)
        return False if False in halves else (True if halves == (True, True) else None)

    def sentence(self) -> str:
        def part(aligner: str, drop: float) -> str:
            margin = self._margin(aligner)
            return f"{aligner} {round(100 * drop):d}%" + (f" ± {round(100 * margin):d}" if np.isfinite(margin) else "")

        parts = ", ".join(part(a, d) for a, d in sorted({**self.geometric, **self.contrastive}.items()))
        word = {True: "yes", False: "no", None: "undecided"}
        # Say which half fails: "geometric losses are robust" and "contrastive alone is fragile" are
        # separate findings, and a reader wants to know which one the data contradicts.
        halves = "; ".join([f"geometric <= {100 * CLAIM_GEOMETRIC_MAX_DROP:.0f}%: {word[self.geometric_holds]}",
                            f"contrastive-only >= {100 * CLAIM_CONTRASTIVE_MIN_DROP:.0f}%: "
                            f"{word[self.contrastive_holds]}"])
        shown = any(np.isfinite(self._margin(a)) for a in (*self.geometric, *self.contrastive))
        why = (f"a drop is within {CLAIM_ERRORS} standard errors of its bound" if shown
               else "one seed gives no standard error")
        verdict = {True: "holds here", False: f"does not hold here ({halves})",
                   None: f"cannot be decided here: {why} ({halves})"}[self.holds]
        spread = f" (± {CLAIM_ERRORS} standard errors over seeds)" if shown else ""
        return (f"{self.perturbation} at {CLAIM_FRACTION}%, {self.anchors} anchors, {self.metric}: relative drops "
                f"{parts}{spread}. The claim (geometric <= "
                f"{100 * CLAIM_GEOMETRIC_MAX_DROP:.0f}%, contrastive-only >= {100 * CLAIM_CONTRASTIVE_MIN_DROP:.0f}%) "
                f"{verdict}.")


def check_claim(drops: pd.DataFrame, metric: str) -> list[ClaimCheck]:
    """Every drop perturbation run at 50% where both a geometric and the contrastive-only variant ran."""
    at = drops[(drops["fraction"] == CLAIM_FRACTION) & drops["perturbation"].str.startswith("drop(")
               & drops["relative_drop"].notna()]
    checks = []
    for (perturbation, anchors), group in at.groupby(["perturbation", "anchors"], sort=True):
        drop_of = dict(zip(group["aligner"], group["relative_drop"]))
        error_of = dict(zip(group["aligner"], group["drop_error"]))
        geometric = {a: float(drop_of[a]) for a in CLAIM_GEOMETRIC if a in drop_of}
        contrastive = {a: float(drop_of[a]) for a in CLAIM_CONTRASTIVE if a in drop_of}
        errors = {a: float(error_of[a]) for a in (*geometric, *contrastive)}
        if geometric and contrastive:
            checks.append(ClaimCheck(perturbation, int(anchors), metric, geometric, contrastive, errors))
    return checks


def headlines(frame: pd.DataFrame) -> list[str]:
    return [m for m in (HEADLINE, *EXTRA_HEADLINES) if m in frame]


def render_markdown(rboards: list[RobustnessBoard]) -> str:
    dataset = rboards[0].dataset
    lines = [f"# Robustness: {dataset}", "",
             "Generated by `alignbench robustness` from the results store. Do not edit by hand.", "",
             "A fraction of one modality's train rows (anchors and unpaired data alike) is damaged; the test split "
             "stays clean. Each cell: mean over seeds in percent, and in brackets the relative change against the "
             "clean run of the same aligner, anchors and seeds.", ""]
    for rboard in rboards:
        setting = rboard.board.setting
        if len(rboards) > 1:
            lines += [f"## Setting {rboard.board.setting_id}", ""]
        frame = long_table(rboard)
        seeds = sorted(frame["seed"].unique())
        encoders = setting.get("encoders") or {}
        lines += [
            f"- dataset: `{setting['dataset']['name']}` {json.dumps(setting['dataset']['params'], sort_keys=True)}",
            f"- encoders: {_encoders(encoders)}",
            f"- anchors: {setting['anchor_strategy']} selection; seeds {', '.join(map(str, seeds))}",
            *splits_line(rboard.board.records, setting.get("protocol")),
            "- spread: each seed draws its own anchors, damaged rows (nested across fractions) and embedding "
            "noise; an input corruption (of images or captions) changes each item the same way in every seed "
            "(its own `seed` parameter: the corrupted copy of the split is encoded once), so its ± leaves out "
            "the variance of the corruption itself",
            "",
        ]
        for metric in headlines(frame):
            drops, clean = drop_table(frame, metric), clean_table(frame, metric)
            for anchors in sorted(drops["anchors"].unique()):
                lines += [f"### {metric} (%), {anchors} anchor pairs", "",
                          tabulate(wide_table(drops, anchors, clean, len(seeds)), headers="keys", tablefmt="github",
                                   disable_numparse=True, showindex=False), ""]
            checks = check_claim(drops, metric)
            if checks:
                lines += [f"### Seed 001's claim, on {metric}", ""] + [f"- {c.sentence()}" for c in checks] + [""]
        for anchors in sorted(frame["anchors"].unique()):
            fitted = fitted_table(rboard, int(anchors))
            if not fitted.empty:
                lines += [f"### What the fits chose, where the damage changed it ({anchors} anchor pairs)", "",
                          "Per cell, over seeds (one value where every seed gave it, else the range), the choices "
                          "of the leaderboards' \"What the fit chose\" table that differ along their row, and the "
                          "anchor pairs left: in such a row the columns are different models, not only the same "
                          "model learnt from worse data.", "",
                          tabulate(fitted, headers="keys", tablefmt="github", disable_numparse=True,
                                   showindex=False), ""]
        lines += ["### Perturbation parameters", ""]
        for text in sorted(rboard.labels, key=_listing_order):
            damage = json.loads(text)
            lines.append(f"- `{rboard.label(damage)}` ({damage['stage']} stage): "
                         f"{json.dumps(damage['params'], sort_keys=True)} ({damage['source']})")
        lines += ["", "### Aligner parameters", ""] + aligner_parameter_lines(rboard.board) + [""]
    return "\n".join(lines)


def write_robustness(store: ResultStore, out_dir: str | Path, datasets: list[str] | None = None) -> list[Path]:
    """Write ``<dataset>-robustness.md/.csv/.json`` for each dataset with damaged cells in the store."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for dataset, rboards in by_dataset(robustness_boards(store.records()), datasets):
        frames, summaries, claims, fitted = [], [], [], []
        for rboard in rboards:
            frame = long_table(rboard)
            frame.insert(0, "setting", rboard.board.setting_id)
            frames.append(frame)
            fitted += [{"setting": rboard.board.setting_id, **cell} for cell in fitted_cells(rboard)]
            for metric in headlines(frame):
                drops = drop_table(frame, metric)
                drops.insert(0, "metric", metric)
                drops.insert(0, "setting", rboard.board.setting_id)
                summaries.append(drops)
                claims += [{"setting": rboard.board.setting_id, "perturbation": c.perturbation, "anchors": c.anchors,
                            "metric": c.metric, "geometric": c.geometric, "contrastive": c.contrastive,
                            "standard_errors": {a: (e if np.isfinite(e) else None) for a, e in c.errors.items()},
                            "holds": c.holds, "geometric_holds": c.geometric_holds,
                            "contrastive_holds": c.contrastive_holds} for c in check_claim(drops, metric)]
        summary = pd.concat(summaries, ignore_index=True)
        payload = {"dataset": dataset,
                   "settings": {r.board.setting_id: r.board.setting for r in rboards},
                   "summary": json.loads(summary.to_json(orient="records", double_precision=6)),
                   "claim_seed_001": json.loads(json.dumps(claims, sort_keys=True, default=float)),
                   "fitted": fitted}
        written += write_files(out_dir / f"{dataset}-robustness", render_markdown(rboards),
                               pd.concat(frames, ignore_index=True), payload)
    return written
