"""The seed-000 experiment as one call: fmap (both forms), Procrustes and relative representations over the
supervision levels, the spectral diagnostics beside the retrieval table, written as
``<dataset>-diagnosis.md``/``.csv``, and the figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from . import figures
from .cache import EmbeddingCache
from .errors import AlignbenchError
from .leaderboard import boards, headline_table, long_table
from .registry import Registry
from .runner import Runner, Sweep, unpaired_items
from .store import ResultStore
from .supervision import draw_anchors

ALIGNERS = ["fmap", "fmap-spectral", "procrustes", "relative"]
MAPS = ["fmap", "fmap-spectral"]  # the aligners with a functional map of their own
HEADLINE = "mean_R@1"
CLASS_HEADLINE = "class_mean_R@1"
LEVELS = [0, 5, 10, 20, 50, 100, 500]
DIAGNOSTICS = {
    "spectral distance": "spectral_distance",
    "diagonal dominance": "diagonal_dominance",
    "orthogonality error": "orthogonality_error",
    "orthogonality (scale-free)": "orthogonality_error_scale_free",
    "commutativity (normalized)": "commutativity_error_normalized",
    "stable rank of C": "stable_rank",
}


@dataclass
class Diagnosis:
    retrieval: dict[str, pd.DataFrame] = field(default_factory=dict)  # protocol -> headline table
    # protocol -> class-level headline table, for datasets with labels (where captions name a class)
    class_retrieval: dict[str, pd.DataFrame] = field(default_factory=dict)
    diagnostics: pd.DataFrame | None = None
    figures: list[Path] = field(default_factory=list)
    tables: list[Path] = field(default_factory=list)
    command: str = ""  # the command line that makes it


def sweep_for(dataset: tuple[str, dict], levels, seeds, protocol: str, encoders) -> Sweep:
    retrieval = ("retrieval", {"paper_i2t": True} if protocol == "paper" else {})
    return Sweep(aligners=[(a, {}) for a in ALIGNERS], datasets=[dataset], levels=list(levels), seeds=list(seeds),
                 metrics=[retrieval, ("class-retrieval", {}), ("spectral", {}), ("correspondence", {})],
                 encoders=encoders, protocol=protocol)


def diagnose(registry: Registry, store: ResultStore, dataset: tuple[str, dict], *, levels=LEVELS, seeds=(0,),
             protocols=("standard",), encoders=None, out: Path | None = None, on_cell=None,
             cache: EmbeddingCache | None = None, on_encode=None) -> Diagnosis:
    """``cache``: the embedding cache for datasets of raw items (None: encode every time)."""
    report = Diagnosis()
    encoders = encoders or {}
    standard_board = None
    runner = Runner(registry, store, cache=cache, on_encode=on_encode)  # one runner: the data is loaded once
    for protocol in protocols:
        sweep = sweep_for(dataset, levels, seeds, protocol, encoders)
        runner.run(sweep, on_cell=on_cell)
        keys = {cell.key for cell in runner.plan(sweep)}
        [board] = boards([r for r in store.records(dataset=dataset[0]) if r.key in keys])
        report.retrieval[protocol] = headline_table(board)
        if any(CLASS_HEADLINE in r.metrics for r in board.records):
            report.class_retrieval[protocol] = headline_table(board, CLASS_HEADLINE)
        if protocol == "standard" or standard_board is None:
            standard_board = board
    if not any(r.status == "ok" for r in standard_board.records):
        reasons = sorted({r.message.splitlines()[0] for r in standard_board.records if r.message})
        raise AlignbenchError(f"no cell finished, so there is nothing to diagnose ({'; '.join(reasons[:2]) or 'no reason'}"
                              f"); pass levels the train split can hold (--anchors).")
    report.diagnostics = diagnostics_table(long_table(standard_board))
    report.command = command_line(dataset, levels, seeds, protocols, encoders)
    if out is not None:
        name = dataset[0]
        report.tables = write_tables(report, name, out)
        report.figures = draw(registry, runner, sweep_for(dataset, levels, seeds, "standard", encoders),
                              long_table(standard_board), out)
    return report


def diagnostics_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Each functional-map aligner's own map at each level (fmap's and the seed paper's,
    fmap-spectral), and the ground-truth map of the held-out pairs; means over seeds."""
    ok = frame[frame["status"] == "ok"]
    rows = {}
    has_map = f"fmap_{DIAGNOSTICS['stable rank of C']}"
    for aligner in MAPS if has_map in ok else ():  # no column: no functional-map cell finished
        fitted = ok[(ok["aligner"] == aligner) & ok[has_map].notna()]
        for level, at in fitted.groupby("anchors", sort=True):
            rows[f"{aligner}, {level} anchors"] = {
                label: at[f"fmap_{key}"].mean() for label, key in DIAGNOSTICS.items()
            }
    truth = ok.iloc[0]
    rows["ground truth (held-out pairs)"] = {
        label: truth[key] if key == "spectral_distance" else truth[f"gt_{key}"] for label, key in DIAGNOSTICS.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "map"
    return table


def command_line(dataset: tuple[str, dict], levels, seeds, protocols, encoders) -> str:
    """The ``alignbench diagnose`` command that makes a diagnosis (options it leaves at their defaults
    left out; dataset and encoder parameters only named)."""
    words = ["alignbench diagnose", f"--dataset {dataset[0]}"]
    if list(levels) != LEVELS:
        words.append(f"--anchors {','.join(map(str, levels))}")
    if tuple(protocols) != ("standard",):
        words.append(f"--protocol {'both' if len(protocols) == 2 else protocols[0]}")
    if list(seeds) != [0]:
        words.append(f"--seeds {','.join(map(str, seeds))}")
    command = f"`{' '.join(words)}`"
    return command + (" with its own dataset or encoder options" if dataset[1] or encoders else "")


def render_markdown(report: Diagnosis, dataset: str, command: str) -> str:
    """The tables of a diagnosis, as ``alignbench diagnose`` prints them and writes them beside the figures."""
    lines = [f"# {dataset}: the seed-000 experiment", "", f"Generated by {command}. Do not edit.", ""]
    for protocol, table in report.retrieval.items():
        lines += [f"## Mean Recall@1 (%), {protocol} protocol; columns are anchor pairs", "",
                  tabulate(table, headers="keys", tablefmt="github", disable_numparse=True), ""]
        if protocol in report.class_retrieval:
            lines += [f"## Class-level mean Recall@1 (%), {protocol} protocol; columns are anchor pairs", "",
                      tabulate(report.class_retrieval[protocol], headers="keys", tablefmt="github",
                               disable_numparse=True), ""]
    lines += ["## Spectral diagnostics (standard protocol, mean over seeds)", "",
              "Each aligner's own functional map `C` (k x k) at each level, and the ground-truth map "
              "`C_gt = Psi^T Pi Phi` of the held-out pairs. Spectral distance: of the aligner's train graphs' "
              "spectra in its rows, of the held-out graphs' spectra in the ground truth's. Stable rank of C: "
              "||C||_F^2 / ||C||_2^2, k for an orthogonal map and at most its rank; a map of low rank sends "
              "most of one basis to nothing, and the zero map's orthogonality error is 1/sqrt(k) (0.14 at "
              "k = 50).", "",
              tabulate(report.diagnostics, headers="keys", tablefmt="github", floatfmt=".4g"), ""]
    return "\n".join(lines)


def write_tables(report: Diagnosis, dataset: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    md, csv = out / f"{dataset}-diagnosis.md", out / f"{dataset}-diagnosis.csv"
    md.write_text(render_markdown(report, dataset, report.command))
    report.diagnostics.to_csv(csv, float_format="%.6g")
    return [md, csv]


def draw(registry: Registry, runner: Runner, sweep: Sweep, frame: pd.DataFrame, out: Path) -> list[Path]:
    """Refit fmap at the largest level (first seed) to draw its map beside the ground truth."""
    [cell] = [c for c in runner.plan(sweep) if c.aligner == "fmap" and c.seed == sweep.seeds[0]
              and c.anchors == max(sweep.levels)]
    splits = runner.splits_for(cell.config)
    level = min(max(sweep.levels), splits.train.n_items)
    anchors = draw_anchors(splits.train, [level], sweep.seeds[0], sweep.anchor_strategy)[level]
    xu, yu = unpaired_items(splits.train, anchors, sweep.seeds[0])
    aligner = registry.create("aligner", "fmap", {}).fit(anchors.x, anchors.y, xu, yu)
    spectral = registry.create("metric", "spectral", {})
    c_gt, lx, ly = spectral.ground_truth(splits.test)
    name = sweep.datasets[0][0]
    k = min(len(aligner.C_), len(c_gt))
    paths = figures.save(figures.functional_map_heatmaps(
        {f"fmap, {level} anchors": aligner.C_[:k, :k], "ground truth (held-out)": c_gt[:k, :k]},
        f"{name}: functional maps"), out / f"{name}-functional-maps")
    paths += figures.save(figures.spectra(
        {"X (train graph)": aligner.eigvals_x_, "Y (train graph)": aligner.eigvals_y_,
         "X (held-out)": lx, "Y (held-out)": ly}, f"{name}: Laplacian spectra"), out / f"{name}-spectra")
    paths += figures.save(figures.recall_vs_anchors(frame, recall_metrics(frame), f"{name}: retrieval vs supervision"),
                          out / f"{name}-recall-vs-anchors")
    return paths


def recall_metrics(frame: pd.DataFrame) -> list[str]:
    """Instance-level recall, and class-level recall beside it where items have labels: where captions
    only name a class (Fashion-MNIST) the class level is the only one that means anything."""
    labelled = CLASS_HEADLINE in frame and frame[CLASS_HEADLINE].notna().any()
    return [HEADLINE, CLASS_HEADLINE] if labelled else [HEADLINE]
