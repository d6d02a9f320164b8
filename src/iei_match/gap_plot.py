"""Pictures of a gap report: a PNG heatmap (matplotlib, Agg) or a self-contained HTML page.

Both show the shortfall (demand - supply) of each program group (rows, with its category)
in each province (columns), one panel per level, shortages first: red is a shortage of
graduates (the cells that matter), a pale blue a surplus. The HTML page adds the full table;
it has no script and loads nothing from elsewhere.

Chinese labels are drawn with the font shipped in the package (Noto Sans CJK SC, subset to
GB 2312; ``fonts/LICENSE-OFL.txt``), so they render whatever the machine has installed.
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


BUNDLED_FONT = Path(__file__).resolve().parent / "fonts" / "NotoSansSC-GB2312.otf"


def cjk_font() -> str | None:
    """The family name of a font with Chinese glyphs: the one shipped in the package, else
    an installed one (matplotlib's font list, then the system's font files), else None.
    """
    from matplotlib import font_manager

    if BUNDLED_FONT.is_file():
        try:
            font_manager.fontManager.addfont(str(BUNDLED_FONT))
            return font_manager.FontProperties(fname=str(BUNDLED_FONT)).get_name()
        except (OSError, RuntimeError, ValueError):
            pass
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


def row_label(row) -> str:
    """How a cell's group is named on a picture: ``4607 汽车制造类 · 装备制造大类``, or
    the category alone when the report has one level."""
    group, name = str(row["group"]), str(row["group_name"])
    cat_name = str(row["category_name"])
    label = f"{group} {name}" if name != group else group
    if group != str(row["category"]) and cat_name != str(row["category"]):
        label += f" · {cat_name}"
    return label


def shortfall_grid(table: pd.DataFrame, level) -> pd.DataFrame:
    """Shortfall of one level as a group x province grid (0 where nothing is), the groups
    with the largest shortfall first."""
    part = table[table["level"] == level]
    part = part.assign(row=[row_label(r) for _, r in part.iterrows()])
    grid = part.pivot_table(index="row", columns="province", values="shortfall",
                            aggfunc="sum", fill_value=0).sort_index(axis=1)
    order = grid.clip(lower=0).sum(axis=1).sort_values(ascending=False, kind="stable").index
    return grid.loc[order]


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


def _colors(grid: np.ndarray, limit: float) -> np.ndarray:
    """RGBA cells: shortages in reds that deepen with the shortfall, surpluses a pale
    blue, empty cells white."""
    from matplotlib import colormaps

    reds = colormaps["Reds"]
    out = np.ones(grid.shape + (4,))
    short = grid > 0
    out[short] = reds(0.25 + 0.75 * np.minimum(grid[short] / limit, 1.0))
    out[grid < 0] = (0.86, 0.91, 0.97, 1.0)
    return out


def _png(table: pd.DataFrame, path: str) -> None:
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    levels = sorted(table["level"].unique())
    grids = [shortfall_grid(table, lv) for lv in levels]
    font = cjk_font()
    family = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    rows = max((g.shape[0] for g in grids), default=1)
    cols = max((g.shape[1] for g in grids), default=1)
    label_width = max((len(str(r)) for g in grids for r in g.index), default=4)
    width = min(max(9.0, 1.5 + 0.13 * label_width + 0.6 * cols * len(levels)), 60)
    short = int(table["shortfall"].clip(lower=0).sum())
    with rc_context({"font.family": "sans-serif", "font.sans-serif": family,
                     "axes.unicode_minus": False}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*[Gg]lyph .* missing from font.*")
        fig = Figure(figsize=(width, 3.0 + 0.36 * rows), layout="constrained")
        axes = fig.subplots(1, max(len(levels), 1), squeeze=False)[0]
        limit = max(1, int(table["shortfall"].clip(lower=0).max()))
        for ax, level, grid in zip(axes, levels, grids, strict=False):
            values = grid.to_numpy(float)
            ax.imshow(_colors(values, limit), aspect="auto", interpolation="nearest")
            ax.set_title(f"层次 level: {level}")
            ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns], rotation=45,
                          ha="right")
            ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
            ax.set_xlabel("省份 province")
            if ax is axes[0]:
                ax.set_ylabel("专业类 · 专业大类  program group · category")
            if grid.size <= 600:
                for (i, j), value in np.ndenumerate(values):
                    if value > 0:
                        ax.text(j, i, f"缺 {int(value)}", ha="center", va="center",
                                fontsize=9, color="white" if value > 0.55 * limit else "black")
                    elif value < 0:
                        ax.text(j, i, f"余 {int(-value)}", ha="center", va="center",
                                fontsize=7, color="#667788")
        fig.legend(handles=[Patch(color=_colors(np.array([limit]), limit)[0],
                                  label="缺 shortage: people asked - graduates per year"),
                            Patch(color=(0.86, 0.91, 0.97), label="余 surplus")],
                   loc="outside lower center", ncols=2, frameon=False)
        fig.suptitle(f"供需缺口 Supply-demand gap: {short} people short of graduates",
                     fontsize=13)
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
        parts.append(f"<h2>Level: {esc(str(level))}</h2><table><tr><th class='l'>group"
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
