"""Figures next to the leaderboards: PNG and SVG, deterministic file names and bytes.

matplotlib is imported here only, and only when a figure is drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import AlignbenchError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        matplotlib.rcParams["svg.hashsalt"] = "alignbench"  # stable element ids in SVG
        import matplotlib.pyplot as plt
    except ImportError:
        raise AlignbenchError("figures need matplotlib: pip install 'alignbench[figures]'") from None
    return plt


def save(fig, stem: Path) -> list[Path]:
    """``stem.png`` and ``stem.svg``, without timestamps so that reruns give the same bytes."""
    plt = _pyplot()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=110, metadata={"Software": None}, bbox_inches="tight")
    fig.savefig(paths[1], metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    return paths


def functional_map_heatmaps(maps: dict[str, np.ndarray], title: str):
    """One heatmap per map (e.g. estimated and ground truth), each on its own symmetric colour scale
    (an unrefined map's entries can be 100 times the ground truth's)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(maps), figsize=(4.6 * len(maps), 4), squeeze=False)
    for ax, (name, c) in zip(axes[0], maps.items()):
        limit = float(np.abs(c).max()) or 1.0
        image = ax.imshow(c, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(name)
        ax.set_xlabel("X eigenvector")
        ax.set_ylabel("Y eigenvector")
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(title)
    return fig


def spectra(curves: dict[str, np.ndarray], title: str):
    """Laplacian eigenvalue spectra overlaid (each scaled by its last eigenvalue, as the distance is)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, eigenvalues in curves.items():
        ax.plot(np.arange(len(eigenvalues)), eigenvalues / eigenvalues[-1], marker=".", label=name)
    ax.set_xlabel("eigenvalue index")
    ax.set_ylabel("eigenvalue / last eigenvalue")
    ax.set_title(title)
    ax.legend()
    return fig


def recall_vs_anchors(frame: pd.DataFrame, metrics: list[str], title: str):
    """One panel per metric, one line per aligner: mean over seeds against anchors, band = min..max
    over seeds."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    ok = frame[(frame["status"] == "ok") & (frame["anchors"] > 0)]
    for ax, metric in zip(axes[0], metrics):
        for aligner, rows in ok.groupby("aligner", sort=True):
            stats = rows.groupby("anchors")[metric].agg(["mean", "min", "max"]) * 100
            ax.plot(stats.index, stats["mean"], marker="o", label=aligner)
            ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.2)
        ax.set_xscale("log")
        ax.set_xlabel("anchor pairs")
        ax.set_ylabel(f"{metric} (%)")
        ax.legend()
    fig.suptitle(title)
    return fig
