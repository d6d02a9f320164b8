"""Pictures of a gap report: a PNG heatmap (matplotlib, Agg) or a self-contained HTML page.

Both show the shortfall (demand - supply) of each program category (rows) in each province
(columns), one panel per level; red is a shortage of graduates, blue a surplus. The HTML
page adds the full table; it has no script and loads nothing from elsewhere.

Chinese labels need a font with Chinese glyphs: the first one installed of a list of
common CJK fonts (Noto Sans CJK, Source Han Sans, WenQuanYi, SimHei, ...) is used; without
any, the picture is still drawn and Chinese characters show as empty boxes.
"""

from __future__ import annotations

import html
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataFileError

__all__ = ["write_gap_plot", "cjk_font", "shortfall_grid"]

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
             "Source Han Sans CN", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei",
             "Microsoft YaHei", "PingFang SC", "Heiti SC", "Hiragino Sans GB",
             "AR PL UMing CN", "Droid Sans Fallback")
_CJK_FILES = ("notosanscjk", "notoserifcjk", "sourcehansans", "wqy", "simhei", "msyh",
              "pingfang", "droidsansfallback", "uming", "ukai")


def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or None.

    Looks in matplotlib's font list first, then among the system's font files (a font
    installed after matplotlib built its cache is added to it).
    """
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FONTS:
        if family in names:
            return family
    for path in font_manager.findSystemFonts():
        if any(key in Path(path).name.lower().replace("-", "").replace("_", "")
               for key in _CJK_FILES):
            try:
                font_manager.fontManager.addfont(path)
                return font_manager.FontProperties(fname=path).get_name()
            except (OSError, RuntimeError, ValueError):
                continue
    return None


def shortfall_grid(table: pd.DataFrame, level) -> pd.DataFrame:
    """Shortfall of one level as a category x province grid (0 where nothing is)."""
    part = table[table["level"] == level]
    return part.pivot_table(index="category", columns="province", values="shortfall",
                            aggfunc="sum", fill_value=0).sort_index().sort_index(axis=1)


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _png(table: pd.DataFrame, path: str) -> None:
    from matplotlib import rc_context
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure

    levels = sorted(table["level"].unique())
    grids = [shortfall_grid(table, lv) for lv in levels]
    font = cjk_font()
    family = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    rows = max((g.shape[0] for g in grids), default=1)
    cols = max((g.shape[1] for g in grids), default=1)
    width = min(4 + 0.55 * cols * len(levels), 60)
    with rc_context({"font.family": "sans-serif", "font.sans-serif": family,
                     "axes.unicode_minus": False}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*[Gg]lyph .* missing from font.*")
        fig = Figure(figsize=(width, 2.5 + 0.35 * rows), layout="constrained")
        axes = fig.subplots(1, max(len(levels), 1), squeeze=False)[0]
        limit = max(1, int(np.abs(table["shortfall"].to_numpy()).max(initial=0)))
        norm = TwoSlopeNorm(vcenter=0, vmin=-limit, vmax=limit)
        image = None
        for ax, level, grid in zip(axes, levels, grids, strict=False):
            image = ax.imshow(grid.to_numpy(float), cmap="RdBu_r", norm=norm, aspect="auto")
            ax.set_title(f"level: {level}")
            ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns], rotation=60,
                          ha="right")
            ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
            ax.set_xlabel("province")
            ax.set_ylabel("program category")
            if grid.size <= 400:
                for (i, j), value in np.ndenumerate(grid.to_numpy()):
                    if value:
                        ax.text(j, i, f"{int(value)}", ha="center", va="center", fontsize=7,
                                color="white" if abs(value) > 0.6 * limit else "black")
        if image is not None:
            fig.colorbar(image, ax=list(axes), label="shortfall (demand - supply)")
        fig.suptitle("Supply-demand gap: people asked minus graduates per year")
        fig.savefig(path, format="png", dpi=110)


def _color(value: float, limit: float) -> str:
    share = min(abs(value) / limit, 1.0) if limit else 0.0
    fade = int(255 - 180 * share)
    return f"rgb(255,{fade},{fade})" if value > 0 else f"rgb({fade},{fade},255)"


def _html(table: pd.DataFrame, path: str) -> None:
    esc = html.escape
    limit = float(np.abs(table["shortfall"].to_numpy()).max(initial=0)) or 1.0
    parts = ["<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'>",
             "<title>Supply-demand gap</title><style>",
             "body{font-family:'Noto Sans CJK SC','Microsoft YaHei','PingFang SC',sans-serif;"
             "margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "th{background:#f3f3f3}td.l,th.l{text-align:left}</style></head><body>",
             "<h1>Supply-demand gap</h1><p>Shortfall = people asked (headcount) minus graduates "
             "per year; red: too few graduates, blue: more graduates than asked.</p>"]
    for level in sorted(table["level"].unique()):
        grid = shortfall_grid(table, level)
        parts.append(f"<h2>Level: {esc(str(level))}</h2><table><tr><th class='l'>category"
                     "</th>" + "".join(f"<th>{esc(str(c))}</th>" for c in grid.columns) + "</tr>")
        for category, values in grid.iterrows():
            cells = "".join(f"<td style='background:{_color(v, limit)}'>{int(v)}</td>"
                            if v else "<td></td>" for v in values)
            parts.append(f"<tr><th class='l'>{esc(str(category))}</th>{cells}</tr>")
        parts.append("</table>")
    totals = table[["demand", "supply", "shortfall", "needs", "programs"]].sum()
    parts.append("<h2>All cells</h2>" + table.to_html(index=False, escape=True, border=0))
    parts.append(f"<p>Totals: demand {int(totals['demand'])}, supply {int(totals['supply'])}, "
                 f"shortfall {int(totals['shortfall'])}, {int(totals['needs'])} needs, "
                 f"{int(totals['programs'])} programs.</p></body></html>")
    Path(path).write_text("\n".join(parts), encoding="utf-8")


def write_gap_plot(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Draw a :func:`~iei_match.gap.gap_report` table to ``path`` (.png or .html), atomically.

    Raises
    ------
    DataFileError
        The extension is neither .png nor .html, or the directory does not exist.
    """
    path = Path(path)
    writers = {".png": _png, ".html": _html, ".htm": _html}
    writer = writers.get(path.suffix.lower())
    if writer is None:
        raise DataFileError(str(path), f"unsupported plot type {path.suffix!r}; use .png or "
                            f".html")
    if not path.parent.is_dir():
        raise DataFileError(str(path), "the plot's directory does not exist")
    _atomic(path, lambda tmp: writer(table, tmp))
