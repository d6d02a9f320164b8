"""The reliability diagram of the fit: predicted fit against the share of real links."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["write_reliability_plot"]


def write_reliability_plot(calibrations: dict[str, dict], path: str | os.PathLike,
                           title: str = "") -> Path:
    """Write a PNG with one reliability diagram per direction.

    Parameters
    ----------
    calibrations : dict
        Direction (e.g. ``"need->program"``) to :func:`~iei_match.evaluate.calibration`'s
        result (its ``table``, ``ece``, ``brier`` and ``rows``).
    path : path-like
        The PNG to write.
    title : str
        Above the diagrams (e.g. the data set's name).

    Returns
    -------
    Path
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2 * max(1, len(calibrations)), 5.4), dpi=110)
    axes = fig.subplots(1, max(1, len(calibrations)), squeeze=False)[0]
    for ax, (direction, cal) in zip(axes, calibrations.items(), strict=False):
        table = cal["table"]
        used = table["count"] > 0
        mid = (table["lower"] + table["upper"]) / 2
        ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=1,
                label="perfect calibration")
        ax.bar(mid[used], table["observed"][used], width=0.09, color="#4C72B0", alpha=0.35,
               label="share of real links")
        ax.plot(table["predicted"][used], table["observed"][used], marker="o",
                color="#C44E52", label="mean fit vs share")
        for x, y, n in zip(mid[used], table["observed"][used], table["count"][used],
                           strict=True):
            ax.annotate(f"{int(n)}", (x, min(float(y) + 0.03, 0.97)), ha="center",
                        fontsize=7, color="#333333")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("predicted fit (bin)")
        ax.set_ylabel("share of pairs that are real links")
        ax.set_title(f"{direction}\nECE {cal['ece']:.3f} · Brier {cal['brier']:.3f} · "
                     f"{cal['rows']:,} rows", fontsize=10)
        ax.set_xticks(np.linspace(0, 1, 6))
        ax.legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
