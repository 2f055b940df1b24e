"""Medians, ranges and ratios of the raw runs; the markdown tables and the PNG chart."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from adapters import SYSTEMS


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str
    higher_is_better: bool


METRICS = (
    Metric("drain", "drain", "jobs/s", True),
    Metric("single", "single enqueue", "jobs/s", True),
    Metric("bulk", "bulk enqueue", "jobs/s", True),
    Metric("p50", "pickup p50", "ms", False),
    Metric("p99", "pickup p99", "ms", False),
)
FAMILIES = {"postgres": "PostgreSQL", "redis": "Redis"}


def summarize(runs: list[dict[str, Any]], systems: list[str]) -> dict[str, dict[str, Any]]:
    """Per system and metric: median, min, max, n of the repetitions, and ``ratio``: how many
    times better than the best peer (not dataqueue) of its backend family: median / best for
    rates, best / median for latencies, so above 1 is better and the best peer is 1.00."""
    out: dict[str, dict[str, Any]] = {}
    for name in systems:
        out[name] = {}
        for m in METRICS:
            values = [r[m.key] for r in runs if r["system"] == name and r.get(m.key) is not None]
            out[name][m.key] = (
                {
                    "median": statistics.median(values),
                    "min": min(values),
                    "max": max(values),
                    "n": len(values),
                }
                if values
                else None
            )
    for name in systems:
        cls = SYSTEMS[name]
        for m in METRICS:
            cell = out[name][m.key]
            if cell is None:
                continue
            rivals = [
                out[o][m.key]["median"]
                for o in systems
                if SYSTEMS[o].family == cls.family
                and not SYSTEMS[o].ours
                and out[o][m.key] is not None
            ]
            if not rivals:
                cell["ratio"] = None
                continue
            best = max(rivals) if m.higher_is_better else min(rivals)
            v = cell["median"]
            cell["ratio"] = (v / best if m.higher_is_better else best / v) if v and best else None
    return out


def best_peer(summary: dict[str, Any], systems: list[str], family: str, key: str) -> str | None:
    metric = next(m for m in METRICS if m.key == key)
    peers = [
        s
        for s in systems
        if SYSTEMS[s].family == family and not SYSTEMS[s].ours and summary[s][key] is not None
    ]
    if not peers:
        return None
    pick = max if metric.higher_is_better else min
    return pick(peers, key=lambda s: summary[s][key]["median"])


def _num(v: float, unit: str) -> str:
    if unit == "ms":
        return f"{v:.1f}" if v >= 100 else f"{v:.2f}"
    return f"{v:,.0f}"


def _cell(cell: dict[str, Any] | None, unit: str, ratio: bool = True) -> str:
    if cell is None:
        return "failed"
    text = _num(cell["median"], unit)
    if cell["n"] > 1:
        text += f" ({_num(cell['min'], unit)}-{_num(cell['max'], unit)})"
    if ratio and cell.get("ratio") is not None:
        text += f" **{cell['ratio']:.2f}x**"
    return text


def full_table(summary: dict[str, Any], systems: list[str]) -> str:
    """Every system: median (min-max) and its ratio to the best other system of its family."""
    head = "| system | backend | " + " | ".join(f"{m.title}, {m.unit}" for m in METRICS) + " |"
    rule = "|---|---|" + "---:|" * len(METRICS)
    rows = [head, rule]
    for name in systems:
        cls = SYSTEMS[name]
        label = f"**{cls.label}**" if cls.ours else cls.label
        cells = [_cell(summary[name][m.key], m.unit) for m in METRICS]
        rows.append(f"| {label} | {FAMILIES[cls.family]} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def summary_table(summary: dict[str, Any], systems: list[str]) -> str:
    """The issue's shape: per metric, dataqueue and the best peer of each family."""
    families = [f for f in FAMILIES if any(SYSTEMS[s].family == f for s in systems)]
    head = "| metric |"
    rule = "|---|"
    for f in families:
        head += f" dataqueue {FAMILIES[f]} | best {FAMILIES[f]} peer |"
        rule += "---:|---:|"
    rows = [head, rule]
    for m in METRICS:
        row = f"| {m.title}, {m.unit} |"
        for f in families:
            ours = next((s for s in systems if SYSTEMS[s].family == f and SYSTEMS[s].ours), None)
            row += f" {_cell(summary[ours][m.key], m.unit) if ours else '—'} |"
            peer = best_peer(summary, systems, f, m.key)
            if peer is None:
                row += " — |"
            else:
                row += f" {SYSTEMS[peer].label} {_cell(summary[peer][m.key], m.unit, False)} |"
        rows.append(row)
    return "\n".join(rows)


def notes(systems: list[str]) -> str:
    lines = ["How each system runs (one worker process, concurrency 10) and enqueues in bulk:", ""]
    for name in systems:
        cls = SYSTEMS[name]
        lines.append(
            f"- {cls.label} ({FAMILIES[cls.family]}): {cls.worker_note}; bulk: {cls.bulk_api}"
        )
    return "\n".join(lines)


def chart(summary: dict[str, Any], systems: list[str], title: str, path: str) -> bool:
    """A bar per system and metric (median, whiskers min-max); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    colors = {"postgres": "#336791", "redis": "#d82c20"}
    fig, grid = plt.subplots(2, 3, figsize=(15, 0.5 * len(systems) * 2 + 2.5))
    axes = list(grid.flat)
    axes[-1].axis("off")
    labels = [
        f"{SYSTEMS[s].label} ({'PG' if SYSTEMS[s].family == 'postgres' else 'Redis'})"
        for s in systems
    ]
    ys = list(range(len(systems)))[::-1]
    for ax, m in zip(axes, METRICS, strict=False):
        med, lo, hi, col = [], [], [], []
        for s in systems:
            cell = summary[s][m.key]
            v = cell["median"] if cell else 0.0
            med.append(v)
            lo.append(v - cell["min"] if cell else 0.0)
            hi.append(cell["max"] - v if cell else 0.0)
            base = colors[SYSTEMS[s].family]
            col.append(base if SYSTEMS[s].ours else base + "66")
        ax.barh(ys, med, xerr=[lo, hi], color=col, edgecolor="black", linewidth=0.4, capsize=2)
        for y, v, s in zip(ys, med, systems, strict=True):
            if summary[s][m.key]:
                ax.text(v, y, " " + _num(v, m.unit), va="center", fontsize=7)
        ax.set_yticks(ys)
        ax.set_yticklabels(labels, fontsize=8)
        arrow = "higher is better" if m.higher_is_better else "lower is better"
        ax.set_title(f"{m.title}, {m.unit}\n({arrow})", fontsize=9)
        if m.unit == "ms":
            ax.set_xscale("log")
        ax.margins(x=0.25)
        ax.tick_params(axis="x", labelsize=7)
    axes[-1].text(
        0, 1, title.replace("; ", ";\n").replace(". ", ".\n"), va="top", fontsize=8, wrap=True
    )
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return True
