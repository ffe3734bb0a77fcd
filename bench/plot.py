"""bench/latency.png: p50 and p99 against concurrency, append scenarios beside the floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SERIES = (
    ("append one message (1 KB)", "append_c{}", "tab:blue"),
    ("batch append of 50", "batch50_c{}", "tab:orange"),
    ("floor: bare FastAPI POST", "floor_fastapi_post_c{}", "tab:green"),
    ("floor: bare FastAPI GET", "floor_fastapi_get_c{}", "tab:gray"),
)
CONCURRENCY = (1, 16, 64)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = results["scenarios"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, field, title in ((axes[0], "p50_ms", "p50"), (axes[1], "p99_ms", "p99")):
        for label, pattern, color in SERIES:
            points = [
                (c, scenarios[pattern.format(c)][field])
                for c in CONCURRENCY
                if pattern.format(c) in scenarios
                and scenarios[pattern.format(c)].get(field) is not None
            ]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker="o", color=color, label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(CONCURRENCY, [str(c) for c in CONCURRENCY])
        ax.set_xlabel("connections (one request in flight each)")
        ax.set_title(f"{title} latency")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("milliseconds")
    axes[1].legend(fontsize=8)
    meta = results.get("meta", {})
    fig.suptitle(
        f"session service vs framework floor ({meta.get('cpus', '?')} cores, "
        f"{meta.get('duration_s', '?')} s per point)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
