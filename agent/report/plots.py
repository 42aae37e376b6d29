"""The report's plots (matplotlib, PNG files beside the report, linked from it).

- `heatmap.png`: per-category deltas, trainings × categories, a diverging map centred on 0;
  a cell whose interval includes 0 (not significant) is hatched and its number greyed.
- `forest.png`: the target delta of every training with its interval, the min_improvement
  line and the band of effects below the MDE (kept with less than 80% power).
- `loss.png`: the training loss of each probe against the baseline seeds' (grey).
- `progress.png`: the best confirmed target delta so far against the trainings spent.

The data each plot draws is computed by a pure function (`heatmap_cells`, `forest_rows`,
`progress_points`) that the tests check against the database; the drawing is a thin layer.
matplotlib is imported only here, with the Agg backend (no display).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.proposals import format_changes
from agent.training_log import read_history

if TYPE_CHECKING:
    from agent.store.store import Store

PLOT_FILES = ("heatmap.png", "forest.png", "loss.png", "progress.png")


@dataclass(frozen=True)
class HeatmapCells:
    rows: list[str]  # one label per training: its change and kind
    categories: list[str]
    deltas: list[list[float]]  # NaN where the training has no comparison for the category
    significant: list[list[bool]]  # the interval excludes 0


def _label(change: str, kind: str) -> str:
    """`lr=0.002`, `lr=0.002 (confirm)`: a training as the plots name it."""
    return change if kind == "probe" else f"{change} ({kind})"


def heatmap_cells(runs: Sequence[dict[str, Any]], categories: Sequence[str]) -> HeatmapCells:
    """Trainings (report order) × categories: delta and whether its interval excludes 0."""
    rows, deltas, significant = [], [], []
    for run in runs:
        by_category = {c["category"]: c for c in (run.get("verdict") or {}).get("categories", [])}
        if not by_category:
            continue  # a crash: nothing compared
        rows.append(_label(run["change"], run["kind"]))
        deltas.append(
            [float(by_category[c]["delta"]) if c in by_category else math.nan for c in categories]
        )
        significant.append(
            [
                c in by_category and (by_category[c]["ci_low"] > 0 or by_category[c]["ci_high"] < 0)
                for c in categories
            ]
        )
    return HeatmapCells(rows, list(categories), deltas, significant)


def forest_rows(runs: Sequence[dict[str, Any]]) -> list[tuple[str, float, float, float, str]]:
    """(label, delta, interval low, interval high, status) per judged training, best first."""
    out = [
        (
            _label(r["change"], r["kind"]),
            float(r["target_delta"]),
            float(r["ci_low"]),
            float(r["ci_high"]),
            r["status"],
        )
        for r in runs
        if r.get("target_delta") is not None and r.get("ci_low") is not None
    ]
    return sorted(out, key=lambda row: -row[1])


def progress_points(probes: Sequence[Any]) -> list[tuple[int, float, str]]:
    """After each training charged to the budget (in the order they ran): (trainings spent,
    the best target delta confirmed so far, 0.0 while the recipe is the best, its kind)."""
    spent, best = 0, 0.0
    out: list[tuple[int, float, str]] = []
    for p in sorted(probes, key=lambda p: p.seq):
        if not p.counted or p.state != "finished":
            continue
        spent += 1
        delta = (p.verdict or {}).get("target_delta")
        if p.status == "keep" and delta is not None:
            best = max(best, float(delta))
        out.append((spent, best, p.kind))
    return out


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


STATUS_COLOURS = {
    "keep": "#1a7f37",
    "candidate": "#4c9a2a",
    "inconclusive": "#6e7781",
    "discard": "#9a6700",
    "guard_fail": "#cf222e",
    "crash": "#000000",
}


def draw_heatmap(cells: HeatmapCells, target: str, path: Path) -> None:
    plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.patches import Rectangle

    finite = [abs(v) for row in cells.deltas for v in row if math.isfinite(v)]
    span = max(finite, default=1.0) or 1.0
    height = 1.2 + 0.45 * len(cells.rows)
    width = 3.0 + 1.15 * len(cells.categories) + 0.06 * max((len(r) for r in cells.rows), default=0)
    fig, ax = plt.subplots(figsize=(width, height))
    image = ax.imshow(cells.deltas, cmap="RdBu", norm=TwoSlopeNorm(0.0, -span, span), aspect="auto")
    for i, row in enumerate(cells.deltas):
        for j, value in enumerate(row):
            if not math.isfinite(value):
                continue
            strong = cells.significant[i][j]
            if not strong:
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        fill=False,
                        hatch="///",
                        edgecolor="#8c959f",
                        linewidth=0,
                    )
                )
            shade = abs(value) / span
            colour = "white" if strong and shade > 0.6 else ("black" if strong else "#57606a")
            ax.text(
                j,
                i,
                f"{value:+.2f}".replace("-0.00", "0.00").replace("+0.00", "0.00"),
                ha="center",
                va="center",
                fontsize=9,
                color=colour,
                fontweight="bold" if strong else "normal",
            )
    ax.set_xticks(range(len(cells.categories)))
    ax.set_xticklabels([f"{c}\n(target)" if c == target else c for c in cells.categories])
    ax.set_yticks(range(len(cells.rows)))
    ax.set_yticklabels(cells.rows)
    ax.set_title("Δ per category vs the baseline (hatched, grey: interval includes 0)", fontsize=10)
    fig.colorbar(image, ax=ax, label="Δ score (positive is better)", shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_forest(
    rows: list[tuple[str, float, float, float, str]],
    target: str,
    min_improvement: float,
    mde: float | None,
    path: Path,
) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 2.2 + 0.42 * len(rows)))
    ys = list(range(len(rows)))[::-1]
    if mde is not None and math.isfinite(mde) and mde > min_improvement:
        ax.axvspan(
            min_improvement,
            mde,
            color="#fff8c5",
            zorder=0,
            label=f"below the MDE ({mde:.2f}): kept with < 80% power",
        )
    ax.axvline(0.0, color="#8c959f", linewidth=1)
    ax.axvline(
        min_improvement,
        color="#1a7f37",
        linestyle="--",
        linewidth=1.2,
        label=f"min_improvement {min_improvement:.2f}",
    )
    for y, (_label_text, delta, low, high, status) in zip(ys, rows, strict=True):
        colour = STATUS_COLOURS.get(status, "#24292f")
        ax.plot([low, high], [y, y], color=colour, linewidth=2)
        ax.plot([delta], [y], "o", color=colour)
        ax.annotate(
            status,
            (high, y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=colour,
        )
    ax.set_yticks(ys)
    ax.set_yticklabels([r[0] for r in rows])
    ax.set_xlabel(f"Δ {target} vs the baseline, with its interval")
    ax.set_ylim(-0.8, len(rows) - 0.2)
    lows = [r[2] for r in rows] + [0.0, min_improvement]
    highs = [r[3] for r in rows] + [min_improvement, mde if mde and math.isfinite(mde) else 0.0]
    pad = 0.15 * ((max(highs) - min(lows)) or 1.0)
    ax.set_xlim(min(lows) - pad, max(highs) + 3 * pad)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2, fontsize=8, frameon=False)
    ax.set_title(f"{target}: every judged training", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_loss(curves: dict[str, tuple[str, list[tuple[float, float]]]], path: Path) -> None:
    """`curves`: label → (kind, [(step, loss)])."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 4.6))
    baseline_labelled = False
    for label, (kind, points) in curves.items():
        steps = [s for s, _ in points]
        losses = [v for _, v in points]
        if kind == "baseline":
            ax.plot(
                steps,
                losses,
                color="#8c959f",
                linewidth=1.2,
                alpha=0.8,
                label=None if baseline_labelled else "baseline seeds",
            )
            baseline_labelled = True
        else:
            ax.plot(steps, losses, linewidth=1.4, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("training loss: probes against the baseline seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_progress(points: list[tuple[int, float, str]], target: str, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 3.6))
    xs = [x for x, _, _ in points]
    ys = [y for _, y, _ in points]
    baselines = [x for x, _, kind in points if kind == "baseline"]
    if baselines:
        ax.axvspan(min(baselines) - 0.5, max(baselines) + 0.5, color="#eaeef2", zorder=0)
        ax.text(
            (min(baselines) + max(baselines)) / 2,
            0.97,
            "baseline seeds",
            ha="center",
            va="top",
            transform=ax.get_xaxis_transform(),
            fontsize=8,
            color="#57606a",
        )
    ax.step(xs, ys, where="post", color="#1a7f37", linewidth=2)
    ax.plot(xs, ys, "o", color="#1a7f37")
    if not any(ys):
        ax.text(
            0.5,
            0.5,
            "no change confirmed in this session",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#57606a",
        )
        ax.set_ylim(-1, 1)
    ax.axhline(0.0, color="#8c959f", linewidth=1)
    ax.set_xlim(0.5, max(xs, default=1) + 0.5)
    ax.set_xticks(xs)
    ax.set_xlabel("trainings spent (baselines and confirmations included)")
    ax.set_ylabel(f"best confirmed Δ {target}\n(0: the recipe)")
    ax.set_title("progress over the session", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(store: Store, session_id: str, data: dict[str, Any], folder: Path) -> list[str]:
    """Draw the session's plots into `folder`; the file names written (a plot with nothing
    to show is not drawn)."""
    folder.mkdir(parents=True, exist_ok=True)
    objective = data["objective"]
    target = objective["target"]
    written = []
    cells = heatmap_cells(data["runs"], data["categories"])
    if cells.rows:
        draw_heatmap(cells, target, folder / "heatmap.png")
        written.append("heatmap.png")
    rows = forest_rows(data["runs"])
    if rows:
        draw_forest(
            rows, target, float(objective["min_improvement"]), data["mde"], folder / "forest.png"
        )
        written.append("forest.png")
    probes = store.probes(session_id)
    curves: dict[str, tuple[str, list[tuple[float, float]]]] = {}
    for p in probes:
        history = read_history(Path(p.run_dir) if p.run_dir else None)
        if history and p.state == "finished":
            label = (
                p.id if p.kind == "baseline" else _label(format_changes(p.changes or {}), p.kind)
            )
            curves[label] = (p.kind, [(e.get("step", i), e["loss"]) for i, e in enumerate(history)])
    if curves:
        draw_loss(curves, folder / "loss.png")
        written.append("loss.png")
    points = progress_points(probes)
    if points:
        draw_progress(points, target, folder / "progress.png")
        written.append("progress.png")
    return written
