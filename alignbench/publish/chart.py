"""Recall against anchors as inline SVG: drawn here in Python, so the chart needs no script, no font
download and no request (the site is read with JavaScript off, and tested for outside requests)."""

from __future__ import annotations

from html import escape

# Tableau 10: distinguishable and colour-blind friendlier than matplotlib's defaults; cycled.
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
WIDTH, HEIGHT = 640, 340
LEFT, RIGHT, TOP, BOTTOM = 48, 170, 16, 40  # the legend sits in the right margin


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5, 10, 20, 50, 100 at or above ``value`` (percent axes end at 100)."""
    for step in (1, 2, 5, 10, 20, 50):
        if value <= step:
            return float(step)
    return 100.0


def recall_chart(series: dict[str, dict[int, float]], levels: list[int], title: str,
                 dashed: frozenset[str] = frozenset(), axis: str = "mean R@1 (%)") -> str:
    """``series``: row label -> {anchor level: mean recall in percent} (levels without a number are left
    out of the line). Levels are spaced evenly (0 to 500 anchors on a linear axis would crowd the
    small levels, and a log axis has no place for 0). ``dashed``: rows drawn dashed (submitted rows)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max([v for points in series.values() for v in points.values()] + [1.0]))
    x = {level: LEFT + (plot_w * i / max(1, len(levels) - 1)) for i, level in enumerate(levels)}

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>",
             f'<g class="axes" stroke="#999" stroke-width="1">'
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}"/>'
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/></g>']
    for i in range(5):
        value = top * i / 4
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:g}</text>')
    for level, position in x.items():
        parts.append(f'<text class="tick" x="{position:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{level}</text>')
    parts.append(f'<text class="label" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">anchor pairs</text>')
    parts.append(f'<text class="label" x="12" y="{TOP + plot_h / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {TOP + plot_h / 2:.1f})">{escape(axis)}</text>')
    for i, (row, points) in enumerate(sorted(series.items())):
        colour = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="5 3"' if row in dashed else ""
        coords = [(x[level], y(points[level]), level, points[level]) for level in levels if level in points]
        parts.append(f'<g class="series" data-aligner="{escape(row)}">')
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} points="'
                     + " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in coords) + '"/>')
        for px, py, level, value in coords:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}">'
                         f"<title>{escape(row)}: {value:.1f}% at {level} anchors</title></circle>")
        legend_y = TOP + 14 * i + 6
        parts.append(f'<line x1="{WIDTH - RIGHT + 12}" y1="{legend_y}" x2="{WIDTH - RIGHT + 30}" y2="{legend_y}" '
                     f'stroke="{colour}" stroke-width="2"{dash}/>'
                     f'<text class="legend" x="{WIDTH - RIGHT + 34}" y="{legend_y + 4}">{escape(row)}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
