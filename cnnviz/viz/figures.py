"""Plotly figure builders: NumPy arrays in, ``plotly.graph_objects.Figure`` out.

Nothing here knows about Streamlit or about the network objects: callers pass plain arrays, so every builder
can be unit-tested on its own. One colour convention across the app:

* weights and gradients: a diverging, colour-blind-safe scale centred on 0 (``DIVERGING``), one shared range
  per figure so that filters can be compared;
* images: greyscale (``IMAGE``);
* activations / feature maps: a perceptually uniform sequential scale (``SEQUENTIAL``).
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

DIVERGING = "RdBu_r"  # blue = negative, red = positive; readable with red-green colour blindness
IMAGE = "gray"
SEQUENTIAL = "Viridis"
TRAIN_COLOUR = "#3b6fd8"
VAL_COLOUR = "#e07b00"
HIGHLIGHT = "#e07b00"
MUTED = "#9aa5b8"
FONT = "Inter, Segoe UI, Helvetica, Arial, sans-serif"


MIN_FONT = 12  # the smallest text on any figure at scale 1: 18 px on a projector (scale 1.5)


def _px(base: float, scale: float) -> int:
    """A font size in px: ``base`` (at least ``MIN_FONT``) times the figure scale."""
    return round(max(base, MIN_FONT) * scale)


def _style_layout(title: str, height: int = 320, scale: float = 1.0) -> dict:
    """The app-wide look as layout properties: title, font, margins, white background. Every text of a
    figure inherits ``font`` unless it sets its own size, which must come from ``_px`` (never below
    ``MIN_FONT`` times ``scale``)."""
    return {"title": {"text": title, "x": 0.0, "xanchor": "left", "font": {"size": _px(16, scale)},
                      "automargin": True},
            "font": {"family": FONT, "size": _px(12, scale)}, "height": round(height * scale),
            "margin": {"l": round(50 * scale), "r": round(20 * scale), "t": round(50 * scale),
                       "b": round(45 * scale)},
            "plot_bgcolor": "white", "paper_bgcolor": "white"}


def style(fig: go.Figure, title: str, height: int = 320, scale: float = 1.0, **layout) -> go.Figure:
    """Apply the app-wide look (``_style_layout``), ``scale`` > 1 for presentation, plus extra ``layout``."""
    fig.update_layout(**_style_layout(title, height, scale), **layout)
    return fig


def symmetric_range(*arrays: np.ndarray) -> float:
    """Largest absolute value over all arrays (at least a tiny epsilon), for a colour scale centred on 0."""
    m = max((float(np.max(np.abs(a))) for a in arrays if np.size(a)), default=0.0)
    return m if m > 0 and np.isfinite(m) else 1e-12


# --- Tiled grids (Train, Inside, Gradients, Draw, Evaluate) ---
# Grids of small images (filters, feature maps, gradients, galleries) are drawn as ONE heatmap per block of
# tiles separated by NaN gaps: one trace is far cheaper to build, send and redraw than dozens of subplots
# (a 32-filter, 3-layer network would otherwise need hundreds), and hover still names tile and pixel.
# The arrays stay NumPy so that Plotly sends them as compact binary, not as lists of numbers.


def grid_shape(n: int, max_cols: int = 8) -> tuple[int, int]:
    """(rows, cols) of a balanced grid for ``n`` tiles with at most ``max_cols`` columns.

    As few rows as ``max_cols`` allows, then as few columns as those rows need, so the last row is never
    nearly empty: 9 tiles with 8 columns -> 2 × 5 (not 8 + 1), 32 -> 4 × 8, 12 -> 2 × 6, 3 -> 1 × 3.
    """
    n = max(1, int(n))
    max_cols = max(1, int(max_cols))
    rows = -(-n // max_cols)  # ceil
    return rows, -(-n // rows)


def square_cols(n: int, max_cols: int = 8) -> int:
    """Columns of a near-square balanced grid for ``n`` tiles (≤ ``max_cols``): 8 -> 3, 16 -> 4, 32 -> 6."""
    return grid_shape(n, min(max_cols, math.ceil(math.sqrt(max(1, n)))))[1]


def tile(stack: np.ndarray, ncols: int, gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Tile ``stack`` (n, h, w) into a grid with ``ncols`` columns and NaN gaps of ``gap`` pixels.

    Returns ``(tiled, index)``: tiled (R, Cols) float32 with NaN in the gaps and empty cells, and index
    (R, Cols, 3) int32 giving for every pixel (tile number, row in tile, column in tile), -1 in the gaps.
    """
    stack = np.asarray(stack, dtype=np.float32)
    n, h, w = stack.shape
    ncols = max(1, min(int(ncols), n))
    nrows = -(-n // ncols)  # ceil
    H, W = nrows * h + (nrows - 1) * gap, ncols * w + (ncols - 1) * gap
    tiled = np.full((H, W), np.nan, dtype=np.float32)
    index = np.full((H, W, 3), -1, dtype=np.int32)
    rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")  # (h, w) each
    for k in range(n):  # loop over tiles (at most a few hundred), not pixels
        r0, c0 = (k // ncols) * (h + gap), (k % ncols) * (w + gap)
        tiled[r0:r0 + h, c0:c0 + w] = stack[k]
        index[r0:r0 + h, c0:c0 + w] = np.stack([np.full((h, w), k), rr, cc], axis=-1)  # (h, w, 3)
    return tiled, index


_TILE_AXIS = {"showticklabels": False, "showgrid": False, "zeroline": False, "ticks": "",
              "constrain": "domain", "fixedrange": True}  # image-like axes of the tiled grids


def _colour(kind: str, arrays: list[np.ndarray], zrange: float | None = None) -> dict:
    """Trace colour settings (colorscale, zmin, zmax[, zmid]) for one kind of data shared by ``arrays``.

    ``"diverging"`` (weights, gradients, pre-activations): ``DIVERGING`` centred on 0 with a symmetric range;
    ``"image"``: greys over [0, 1] (or the data range if it leaves [0, 1]); ``"sequential"``: ``SEQUENTIAL``
    over the data range (or diverging if the data has clearly both signs, e.g. after tanh).
    """
    ca = _colour_axis(kind, arrays, zrange)
    out = {"colorscale": ca["colorscale"], "zmin": ca["cmin"], "zmax": ca["cmax"]}
    if "cmid" in ca:
        out["zmid"] = ca["cmid"]
    if ca.get("reversescale"):
        out["reversescale"] = True
    return out


def _label_fit(labels: list[str], tile_px: float, font_px: float) -> list[str]:
    """The labels, or their trailing numbers ("filter 12" -> "12") when a label is wider than its tile."""
    widest = max((len(s) for s in labels), default=0) * 0.58 * font_px
    if widest <= tile_px * 1.05:
        return labels
    return [s.rsplit(" ", 1)[-1] for s in labels]


DETAILED_HOVER_CELLS = 6000  # tiled grids up to this many cells get row/column hover (filters, gradients)
# Figures go to the browser as Plotly's JSON with NumPy arrays as typed binary (base64): z stays float32.


def tiled_panels(blocks: list[dict], title: str, scale: float = 1.0, tile_px: float = 80.0,
                 ncols: int | None = None, side_by_side: bool = False, colorbar: str = "right",
                 max_cols: int = 8) -> go.Figure:
    """Blocks of tiles, each block ONE heatmap on its own axes with its own colour range and colour bar.

    ``blocks``: dicts with ``stack`` (n, h, w), ``labels`` (n strings, drawn above the tiles), ``colour``
    (``_colour`` settings), ``name`` (the block's title, may be ""), ``cbar`` (colour-bar title) and
    ``hover`` (what a value is called). Every block uses the same grid (``ncols``, default a balanced grid
    of at most ``max_cols`` columns), so blocks line up tile for tile. ``tile_px``: the height of one tile at
    scale 1 (scaled like the text); the figure's height follows from it, so tiles keep their size whatever the
    number of rows. Blocks are stacked top to bottom, or placed side by side.
    """
    n, h, w = blocks[0]["stack"].shape
    cols = max(1, min(ncols or grid_shape(n, max_cols)[1], n))
    rows = -(-n // cols)
    font = _px(12, scale)
    tile_h = tile_px * scale  # screen pixels of one tile
    px_per_cell = tile_h / h
    label_px = round(font * 1.45)  # the band above each tile holding its label
    gap = max(1, math.ceil(label_px / px_per_cell))  # in data cells: gaps are NaN cells of the tiled array
    block_h = rows * (tile_h + gap * px_per_cell)  # screen px: every row of tiles with the labels above it
    name_px = round(font * 1.6) if any(b.get("name") for b in blocks) else 0
    nb = len(blocks)
    top = _px(16, scale) * 2.4
    bottom = _px(12, scale) * (4.2 if colorbar == "bottom" else 1.2)
    if side_by_side:
        plot_h = block_h + name_px
    else:
        plot_h = nb * (block_h + name_px) + (nb - 1) * font
    height = round(top + plot_h + bottom)
    data, annotations, lay = [], [], {}
    for b_i, blk in enumerate(blocks):
        stack = np.asarray(blk["stack"], dtype=np.float32)  # (n, h, w)
        tiled, index = tile(stack, cols, gap)  # (R, Cols), (R, Cols, 3)
        sfx = "" if b_i == 0 else str(b_i + 1)
        if side_by_side:
            span = 1.0 / nb
            xdom, ydom = [b_i * span + 0.03, (b_i + 1) * span - 0.03], [0.0, block_h / plot_h]
        else:
            y_top = 1.0 - b_i * (block_h + name_px + font) / plot_h
            ydom = [max(0.0, y_top - (block_h + name_px) / plot_h), y_top - name_px / plot_h]
            xdom = [0.0, 1.0]
        # int16 tile numbers (from 1, -1 in the gaps): Plotly sends NumPy arrays as typed binary, so the
        # smaller type halves what a big grid of feature maps costs on the wire
        tile_no = np.where(index[..., 0] >= 0, index[..., 0] + 1, -1).astype(np.int16)  # (R, Cols)
        detailed = tiled.size <= DETAILED_HOVER_CELLS
        if detailed:  # hover names the tile, the row and the column in it
            rc = index[..., 1:].astype(np.int16)  # (R, Cols, 2): row and column in the tile
            custom = np.concatenate([tile_no[..., None], rc], axis=-1)  # (R, Cols, 3)
            where = (f"{blk.get('unit', 'tile')} %{{customdata[0]}}<br>row %{{customdata[1]}}, "
                     "col %{customdata[2]}")
        else:  # big grids (feature maps): the tile only, a third of the data to send
            custom = tile_no  # (R, Cols)
            where = f"{blk.get('unit', 'tile')} %{{customdata}}"
        if colorbar == "bottom":
            cb = {"orientation": "h", "x": (xdom[0] + xdom[1]) / 2, "xanchor": "center", "y": -0.02,
                  "yanchor": "top", "len": 0.8 * (xdom[1] - xdom[0]), "thickness": _px(10, scale),
                  "title": {"text": blk.get("cbar", ""), "side": "top"}, "nticks": 5}
        else:
            # beside the plot; Plotly widens the right margin to hold it
            cb = {"x": 1.01, "xanchor": "left", "y": (ydom[0] + ydom[1]) / 2, "yanchor": "middle",
                  "len": max(0.15, 0.9 * (ydom[1] - ydom[0])), "thickness": _px(10, scale),
                  "title": {"text": blk.get("cbar", ""), "side": "right"}, "nticks": 5,
                  "tickformat": ".2~g"}
        what = blk.get("hover", "value")
        data.append({"type": "heatmap", "z": tiled, "customdata": custom, "hoverongaps": False,
                     "xaxis": "x" + sfx, "yaxis": "y" + sfx, "colorbar": cb, **blk["colour"],
                     "hovertemplate": f"{where}<br>{what} = %{{z:.4g}}<extra></extra>"})
        lay["xaxis" + sfx] = {**_TILE_AXIS, "domain": xdom, "anchor": "y" + sfx,
                              "range": [-0.5, tiled.shape[1] - 0.5]}
        lay["yaxis" + sfx] = {**_TILE_AXIS, "domain": ydom, "anchor": "x" + sfx, "scaleanchor": "x" + sfx,
                              "constraintoward": "top",  # a narrow page shrinks the grid from below
                              "range": [tiled.shape[0] - 0.5, -0.5 - gap]}  # room for the first row's labels
        labels = _label_fit(list(blk["labels"]), tile_h * w / h, font)
        for k in range(min(n, len(labels))):
            annotations.append({"x": (k % cols) * (w + gap) + (w - 1) / 2,
                                "y": (k // cols) * (h + gap) - 0.55,
                                "text": labels[k], "showarrow": False, "yanchor": "bottom",
                                "xref": "x" + sfx, "yref": "y" + sfx, "font": {"size": font}})
        if blk.get("name"):
            annotations.append({"x": (xdom[0] + xdom[1]) / 2, "y": ydom[1], "xref": "paper", "yref": "paper",
                                "xanchor": "center", "yanchor": "bottom",
                                "text": f"<b>{blk['name']}</b>", "showarrow": False, "font": {"size": font}})
    layout = _style_layout(title, height, 1.0)
    layout["title"]["font"]["size"] = _px(16, scale)
    layout["font"]["size"] = font
    layout.update(lay, annotations=annotations,
                  margin={"l": 10, "r": 10, "t": round(top), "b": round(bottom)})
    return go.Figure({"data": data, "layout": layout})


def _filter_labels(F: int, C: int) -> list[str]:
    """Tile labels of a (F, C) filter stack, numbered from 1: "filter 3", or "f3·c2" with several channels."""
    return [f"filter {k // C + 1}" if C == 1 else f"f{k // C + 1}·c{k % C + 1}" for k in range(F * C)]


def filter_cols(n_tiles: int) -> int:
    """Columns of the filter grids (live and replay use the same): near-square, at most 8."""
    return square_cols(n_tiles, 8)


def filter_tile_px(ncols: int) -> float:
    """Tile height at scale 1 for a filter grid with ``ncols`` columns: 100 px (150 px on a projector at
    scale 1.5) up to 3 columns, smaller for wider grids so that they fit a page column."""
    return max(36.0, min(100.0, 330.0 / ncols))


def filter_grid(W: np.ndarray, title: str = "Learned filters (first conv layer)", ncols: int | None = None,
                zmax: float | None = None, scale: float = 1.0, height: int | None = None,
                colorbar_title: str = "weight", tile_px: float | None = None) -> go.Figure:
    """Conv filters W (F, C, KH, KW) as a balanced grid of tiles on ONE diverging scale centred on 0.

    Every (filter, channel) pair is a tile labelled "filter f" (or "f{f}·c{c}" with several input channels),
    numbered from 1; hovering shows filter, channel, row, column and the weight. ``zmax`` fixes the colour
    range (e.g. across replay frames); by default it is the largest |w|. ``tile_px`` sets the tile height at
    scale 1 (default: ``filter_tile_px``); ``height`` overrides the figure height.
    """
    W = np.asarray(W, dtype=np.float32)
    if W.ndim != 4:
        raise ValueError(f"filter_grid expects W of shape (F, C, KH, KW), got {W.shape}")
    F, C, KH, KW = W.shape
    stack = W.reshape(F * C, KH, KW)  # (F*C, KH, KW), filter-major
    ncols = max(1, min(ncols or filter_cols(F * C), F * C))
    z = float(zmax) if zmax else symmetric_range(W)
    blk = {"stack": stack, "labels": _filter_labels(F, C), "cbar": colorbar_title, "hover": "w",
           "unit": "tile", "colour": {"colorscale": DIVERGING, "zmin": -z, "zmax": z, "zmid": 0.0}}
    fig = tiled_panels([blk], title, scale, tile_px or filter_tile_px(ncols), ncols=ncols, colorbar="bottom")
    # hover in filter / channel terms (from 1) instead of tile numbers
    idx = np.asarray(fig.data[0].customdata)  # (R, Cols, 3), or (R, Cols) for a very large grid
    k = (idx[..., 0] if idx.ndim == 3 else idx) - 1
    f_c = np.where(k[..., None] >= 0, np.stack([k // C + 1, k % C + 1], axis=-1), -1)  # (R, Cols, 2)
    where = "filter %{customdata[0]}, channel %{customdata[1]}"
    if idx.ndim == 3:
        f_c = np.concatenate([f_c, idx[..., 1:]], axis=-1)  # (R, Cols, 4)
        where += "<br>row %{customdata[2]}, col %{customdata[3]}"
    fig.data[0].customdata = f_c.astype(np.int32)
    fig.data[0].hovertemplate = where + "<br>w = %{z:.4f}<extra></extra>"
    if height:
        fig.layout.height = height
    return fig


def filter_replay(W_then: np.ndarray, W_init: np.ndarray, step: int, scale: float = 1.0,
                  zmax: float | None = None, ncols: int | None = None,
                  tile_px: float | None = None) -> go.Figure:
    """Two panels for the replay slider: the filters (F, C, KH, KW) at ``step`` and their change since init.

    The same grid as ``filter_grid`` (columns, labels) in each panel. The filters keep ``zmax`` (one range
    for the whole run); the change has its own range centred on 0 (it is usually much smaller).
    """
    W_then = np.asarray(W_then, dtype=np.float32)
    W_init = np.asarray(W_init, dtype=np.float32)
    if W_then.shape != W_init.shape or W_then.ndim != 4:
        raise ValueError(f"filter_replay needs two (F, C, KH, KW) arrays of one shape, got {W_then.shape}, "
                         f"{W_init.shape}")
    F, C, KH, KW = W_then.shape
    delta = W_then - W_init  # (F, C, KH, KW)
    ncols = max(1, min(ncols or filter_cols(F * C), F * C))
    labels = _filter_labels(F, C)
    za = float(zmax) if zmax else symmetric_range(W_then)
    # no change yet (step 0): the filters' own range, so the colour bar reads weights, not "±1p"
    zd = symmetric_range(delta) if np.any(delta) else za
    blocks = [{"stack": W_then.reshape(F * C, KH, KW), "labels": labels, "name": f"filters at step {step}",
               "cbar": "w", "hover": "w", "colour": {"colorscale": DIVERGING, "zmin": -za, "zmax": za,
                                                      "zmid": 0.0}},
              {"stack": delta.reshape(F * C, KH, KW), "labels": labels, "name": "change since initialisation",
               "cbar": "Δw", "hover": "Δw", "colour": {"colorscale": DIVERGING, "zmin": -zd, "zmax": zd,
                                                        "zmid": 0.0}}]
    return tiled_panels(blocks, f"Replay: step {step}", scale, tile_px or filter_tile_px(ncols), ncols=ncols,
                        side_by_side=True, colorbar="bottom")


def map_grid(
    maps: np.ndarray,
    title: str,
    kind: str = "diverging",
    labels: list[str] | None = None,
    cols: int = 8,
    zrange: float | None = None,
    colorbar_title: str = "value",
    scale: float = 1.0,
    panel_px: int = 120,
    unit: str = "map",
) -> go.Figure:
    """A balanced grid of small heatmaps ``maps`` (M, H, W) on ONE colour range (one colour bar).

    Used for filters and ∂E/∂filter (``kind="diverging"``, centred on 0), feature maps before the activation
    (diverging), after the activation or pooling (``"sequential"``) and input images (``"image"``). One
    tiled heatmap (``tiled_panels``) with at most ``cols`` columns; ``panel_px`` is a tile's height at
    scale 1. Hover names the map (``unit`` and its number from 1), the pixel and the value.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 2:
        maps = maps[None]  # (1, H, W)
    m = maps.shape[0]
    blk = {"stack": maps, "labels": labels or [f"{unit} {i + 1}" for i in range(m)], "cbar": colorbar_title,
           "hover": "value", "unit": unit, "colour": _colour(kind, [maps], zrange)}
    return tiled_panels([blk], title, scale, max(24, panel_px), max_cols=cols)


def heatmap_rows(
    rows: list[tuple[str, np.ndarray, str]],
    title: str,
    col_labels: list[str] | None = None,
    colorbar_titles: list[str] | None = None,
    scale: float = 1.0,
    panel_px: int = 110,
    max_cols: int = 8,
    unit: str = "filter",
) -> go.Figure:
    """Blocks of heatmaps, each ``(name, maps (M, H, W), kind)`` with its own colour range and colour bar.

    Every block has the same number M of maps, laid out in the same balanced grid (at most ``max_cols``
    columns, so 32 filters wrap into 4 rows of 8), so tile k of every block shows the same filter. The
    colour range is shared within a block, so filters can be compared; blocks differ (a gradient is on
    another scale than the weights it updates).
    """
    m = rows[0][1].shape[0]
    col_labels = col_labels or [f"{unit} {j + 1}" for j in range(m)]
    blocks = []
    for i, (name, maps, kind) in enumerate(rows):
        maps = np.asarray(maps, dtype=np.float32)  # (M, H, W)
        blocks.append({"stack": maps, "labels": col_labels, "name": name, "unit": unit, "hover": name,
                       "cbar": colorbar_titles[i] if colorbar_titles else name,
                       "colour": _colour(kind, [maps])})
    return tiled_panels(blocks, title, scale, max(24, panel_px), max_cols=max_cols)


# --- Train / Evaluate ---
# Builders for the Train and Evaluate pages (the tiled grids are above).


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (window ≤ len(y)); the first values average what exists so far."""
    y = np.asarray(y, dtype=np.float64)
    if window <= 1 or y.size < 2:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))  # (n + 1,)
    idx = np.arange(1, y.size + 1)
    lo = np.maximum(idx - window, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def _thin(x: np.ndarray, *ys: np.ndarray, max_points: int = 1500) -> tuple[np.ndarray, ...]:
    """Keep at most ``max_points`` evenly spaced points (always the last) so long runs redraw fast."""
    n = len(x)
    if n <= max_points:
        return (np.asarray(x), *(np.asarray(y) for y in ys))
    keep = np.unique(np.linspace(0, n - 1, max_points).astype(np.int64))
    return (np.asarray(x)[keep], *(np.asarray(y)[keep] for y in ys))


def training_curves(steps: np.ndarray, loss: np.ndarray, acc: np.ndarray, val_steps: np.ndarray,
                    val_loss: np.ndarray, val_acc: np.ndarray, scale: float = 1.0, height: int = 300,
                    smooth: int | None = None) -> go.Figure:
    """Loss and accuracy against the step, train (per-batch, faint, plus a moving average) vs validation.

    steps, loss, acc (n,) from the step records; val_steps, val_loss, val_acc (m,) from the validation runs.
    Built as one dict of traces and layout (two panels sharing the step axis), validated by Plotly once:
    it is redrawn on every live tick, and make_subplots plus a dozen updates cost four times as much.
    """
    steps, loss, acc = (np.asarray(a, dtype=np.float64) for a in (steps, loss, acc))
    val_steps, val_loss, val_acc = (np.asarray(a, dtype=np.float64) for a in (val_steps, val_loss, val_acc))
    window = smooth if smooth is not None else max(1, min(50, len(steps) // 10))
    ls, as_ = _smooth(loss, window), _smooth(acc, window)
    xs, l_raw, a_raw, l_s, a_s = _thin(steps, loss, acc, ls, as_)
    traces = []
    panels = ((l_raw, l_s, val_loss, "loss", "y"), (a_raw, a_s, val_acc, "accuracy", "y2"))
    for raw, sm, v, name, yref in panels:
        first, xref = yref == "y", "x" if yref == "y" else "x2"
        on = {"xaxis": xref, "yaxis": yref, "showlegend": first, "type": "scatter"}
        if window > 1:
            traces.append({**on, "x": xs, "y": raw, "mode": "lines",
                           "line": {"color": TRAIN_COLOUR, "width": 1}, "opacity": 0.25,
                           "name": "train (batch)", "legendgroup": "raw",
                           "hovertemplate": "step %{x}<br>batch " + name + " %{y:.4f}<extra></extra>"})
        traces.append({**on, "x": xs, "y": sm, "mode": "lines+markers" if len(xs) < 40 else "lines",
                       "line": {"color": TRAIN_COLOUR, "width": 2.2}, "marker": {"size": round(5 * scale)},
                       "name": "train" + (f" (mean of {window})" if window > 1 else ""),
                       "legendgroup": "train",
                       "hovertemplate": "step %{x}<br>train " + name + " %{y:.4f}<extra></extra>"})
        traces.append({**on, "x": val_steps, "y": v, "mode": "lines+markers",
                       "line": {"color": VAL_COLOUR, "width": 2, "dash": "dot"},
                       "marker": {"size": round(6 * scale), "symbol": "diamond"}, "name": "validation",
                       "cliponaxis": False,  # the step-0 point sits on the axis: draw it whole
                       "legendgroup": "val",
                       "hovertemplate": "step %{x}<br>validation " + name + " %{y:.4f}<extra></extra>"})
    last = max(float(steps[-1]) if len(steps) else 0.0, float(val_steps[-1]) if len(val_steps) else 0.0)
    grid = {"gridcolor": "#eef1f6", "zeroline": False, "automargin": True}
    x_axis = {**grid, "domain": [0.0, 1.0], "rangemode": "tozero", "tickformat": ",d",
              "range": [0, 5.2] if last < 5 else None}
    layout = _style_layout("Training curves", height, scale)
    layout.update(
        xaxis={**x_axis, "anchor": "y", "matches": "x2", "showticklabels": False},
        xaxis2={**x_axis, "anchor": "y2", "title": {"text": "step"}},
        yaxis={**grid, "anchor": "x", "domain": [0.54, 1.0], "title": {"text": "loss"},
               "rangemode": "tozero"},
        yaxis2={**grid, "anchor": "x2", "domain": [0.0, 0.46], "title": {"text": "accuracy"},
                "range": [0, 1.02], "tickformat": ".0%"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1.0},
        hovermode="x unified",
        margin={"l": round(60 * scale), "r": 20, "t": round(60 * scale), "b": round(45 * scale)},
    )
    if len(steps) == 0:
        layout["annotations"] = [{"text": "no steps yet: press Step or Play", "x": 0.5, "y": 0.5,
                                  "xref": "paper", "yref": "paper", "showarrow": False,
                                  "font": {"size": _px(14, scale), "color": MUTED}}]
    return go.Figure({"data": traces, "layout": layout})


def confusion_matrix(cm: np.ndarray, class_names: list[str], selected: tuple[int, int] | None = None,
                     scale: float = 1.0, height: int | None = None) -> go.Figure:
    """Confusion matrix cm (K, K) of counts (rows = true class, columns = predicted) as an annotated heatmap.

    Colour is the share of each true class (row-normalised) so that small classes read the same; the text
    is the count. ``selected`` (true, predicted) gets an outline. Heatmaps cannot be selected by a click in
    Plotly, so an invisible marker sits on every cell (trace 1, point index = true * K + predicted): clicking
    a cell selects that marker.
    """
    cm = np.asarray(cm)
    K = cm.shape[0]
    if cm.shape != (K, K) or len(class_names) != K:
        raise ValueError(f"confusion_matrix needs (K, K) counts and K names, got {cm.shape}, "
                         f"{len(class_names)}")
    rows = cm.sum(axis=1, keepdims=True)  # (K, 1)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)  # (K, K)
    names = [str(c) for c in class_names]
    fig = go.Figure(go.Heatmap(
        z=share, x=names, y=names, text=cm.astype(np.int64), texttemplate="%{text}",
        textfont={"size": _px(12 if K > 4 else 18, scale)}, colorscale="Blues", zmin=0, zmax=1,
        colorbar={"title": {"text": "share of<br>true class", "side": "right"}, "tickformat": ".0%",
                  "thickness": round(10 * scale), "len": 0.9},
        hoverinfo="skip", xgap=1, ygap=1,
    ))
    tt, pp = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")  # (K, K) true, predicted per cell
    fig.add_trace(go.Scatter(
        x=[names[i] for i in pp.ravel()], y=[names[i] for i in tt.ravel()], mode="markers",
        marker={"size": round((28 if K > 4 else 80) * scale), "opacity": 0, "symbol": "square"},
        customdata=np.stack([cm.ravel(), share.ravel()], axis=-1), showlegend=False,
        selected={"marker": {"opacity": 0}}, unselected={"marker": {"opacity": 0}},
        hovertemplate="true %{y}, predicted %{x}<br>%{customdata[0]} images (%{customdata[1]:.1%} of true "
                      "%{y})<br>click to see them<extra></extra>",
    ))
    height = height or round((110 + (32 if K > 4 else 100) * K) * scale)
    style(fig, "Confusion matrix", height=height, scale=scale)
    # explicit ranges: the click markers would otherwise pad the autorange
    fig.update_xaxes(title_text="predicted class", type="category", side="bottom", showgrid=False,
                     automargin=True, range=[-0.5, K - 0.5])
    fig.update_yaxes(title_text="true class", type="category", range=[K - 0.5, -0.5], showgrid=False,
                     automargin=True)
    if selected is not None:
        t, p = selected
        fig.add_shape(type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5,
                      line={"color": HIGHLIGHT, "width": 3})
    return fig


def image_gallery(images: np.ndarray, captions: list[str], title: str, ncols: int = 8, scale: float = 1.0,
                  hover: list[str] | None = None, height: int | None = None,
                  tile_px: float = 90.0) -> go.Figure:
    """Images (n, 28, 28) in [0, 1] as a grayscale grid with a caption above each (e.g. "7 → 1 · 98%").

    ``hover`` (n strings) adds a per-image hover text (e.g. all class probabilities). At most ``ncols``
    columns, balanced rows; ``tile_px`` is an image's height at scale 1.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 3:
        raise ValueError(f"image_gallery expects (n, H, W) images, got {images.shape}")
    n = images.shape[0]
    if n == 0:
        fig = style(go.Figure(), title, height=140, scale=scale)
        fig.add_annotation(text="no images here", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                           font={"size": _px(14, scale), "color": MUTED})
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return fig
    blk = {"stack": images, "labels": list(captions), "cbar": "", "unit": "image",
           "colour": {"colorscale": IMAGE, "zmin": 0, "zmax": 1, "showscale": False}}
    fig = tiled_panels([blk], title, scale, tile_px, max_cols=ncols)
    # captions never shrink to numbers (they are not "name number" labels): keep the full text
    for a, cap in zip(fig.layout.annotations, captions, strict=False):
        a.text = cap
    idx = np.asarray(fig.data[0].customdata)
    fig.data[0].hovertemplate = ("image %{customdata[0]}" if idx.ndim == 3 else "image %{customdata}") \
        + "<extra></extra>"
    if hover is not None:
        # the long per-image text on its caption's hover: one string per image, not one per pixel (a grid
        # of strings as large as the images made the page several times heavier to send and draw)
        for a, text in zip(fig.layout.annotations, hover, strict=False):
            a.hovertext = text
        fig.data[0].hovertemplate = fig.data[0].hovertemplate.replace(
            "<extra>", " (hover its caption for details)<extra>")
    if height:
        fig.layout.height = height
    return fig


def class_accuracy(acc: np.ndarray, class_names: list[str], overall: float | None = None,
                   scale: float = 1.0, height: int = 280) -> go.Figure:
    """Per-class accuracy (K,) in [0, 1] as bars, with the overall accuracy as a dashed line."""
    acc = np.asarray(acc, dtype=np.float64)
    names = [str(c) for c in class_names]
    fig = go.Figure(go.Bar(x=names, y=acc, marker={"color": TRAIN_COLOUR}, text=[f"{a:.0%}" for a in acc],
                           textposition="outside", cliponaxis=False,
                           hovertemplate="class %{x}<br>accuracy %{y:.1%}<extra></extra>"))
    suffix = f" (overall {overall:.1%}, dashed)" if overall is not None else ""
    style(fig, "Accuracy per true class" + suffix, height=height, scale=scale)
    fig.update_xaxes(title_text="true class", type="category", automargin=True)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.12], tickformat=".0%", gridcolor="#eef1f6",
                     automargin=True)
    if overall is not None:
        fig.add_hline(y=overall, line={"color": VAL_COLOUR, "dash": "dash", "width": 2})
    return fig


# --- Inside / Gradients ---
# Builders for the Inside page (the data flowing through the network, the convolution step-through) and the
# Gradients page (∂E/∂filter, the dense layer's ∂E/∂W, gradient norms over time, histograms).


def _colour_axis(kind: str, arrays: list[np.ndarray], zrange: float | None = None) -> dict:
    """Plotly ``coloraxis`` settings for one kind of data shared by ``arrays``.

    ``"diverging"`` (weights, gradients, pre-activations): ``DIVERGING`` centred on 0 with a symmetric range;
    ``"image"``: greys over [0, 1] (or the data range if it leaves [0, 1]); ``"sequential"``: ``SEQUENTIAL``
    over the data range (or [-r, r] diverging if the data has both signs, e.g. after tanh).
    """
    finite = [np.asarray(a, dtype=np.float64) for a in arrays if np.size(a)]
    lo = min((float(np.nanmin(a)) for a in finite), default=0.0)
    hi = max((float(np.nanmax(a)) for a in finite), default=1.0)
    if kind == "sequential" and lo < 0 < hi and -lo > 0.05 * hi:
        kind = "diverging"
    if kind == "diverging":
        r = float(zrange) if zrange else symmetric_range(*[np.nan_to_num(a) for a in finite])
        return {"colorscale": DIVERGING, "cmin": -r, "cmax": r, "cmid": 0.0}
    if kind == "image":
        lo, hi = min(lo, 0.0), max(hi, 1.0)
        return {"colorscale": "Greys", "reversescale": True, "cmin": lo, "cmax": hi}
    if hi <= lo:
        hi = lo + 1e-12
    return {"colorscale": SEQUENTIAL, "cmin": lo, "cmax": hi}


def flat_vector_figure(vec: np.ndarray, n_segments: int, title: str, segment_name: str = "map",
                       scale: float = 1.0) -> go.Figure:
    """The flattened vector ``vec`` (D,) as one strip of cells, split into ``n_segments`` equal parts
    (one per feature map, C order) marked by lines, so the reader sees the maps laid end to end."""
    vec = np.asarray(vec, dtype=np.float32).reshape(1, -1)  # (1, D)
    d = vec.shape[1]
    seg = d // max(n_segments, 1)
    ca = _colour_axis("sequential", [vec])
    ca["colorbar"] = {"title": {"text": "value", "side": "right"}, "thickness": _px(10, scale), "len": 1.3,
                      "nticks": 3}
    fig = go.Figure(go.Heatmap(z=vec, coloraxis="coloraxis",
                               hovertemplate="index %{x}<br>value %{z:.4g}<extra></extra>"))
    # the segment borders as one list of shapes: add_vline re-validates the layout on every call (a second
    # for 32 maps)
    fig.update_layout(shapes=[{"type": "line", "xref": "x", "yref": "paper", "x0": k * seg - 0.5,
                               "x1": k * seg - 0.5, "y0": 0, "y1": 1, "line": {"color": "white", "width": 2}}
                              for k in range(1, n_segments)])
    tick_vals = [k * seg + seg / 2 - 0.5 for k in range(n_segments)] if n_segments <= 32 else None
    prefix = f"{segment_name} " if n_segments <= 8 else ""  # many segments: numbers only, so labels fit
    fig.update_xaxes(title_text=f"index in the vector (D = {d}; {n_segments} {segment_name}s × {seg})",
                     tickvals=tick_vals, ticktext=[f"{prefix}{k + 1}" for k in range(n_segments)]
                     if tick_vals else None, tickangle=0, showgrid=False)
    fig.update_yaxes(showticklabels=False, title_text="1 × D", showgrid=False)
    return style(fig, title, height=170, scale=scale, coloraxis=ca)


def probability_figure(proba: np.ndarray, class_names: list[str], title: str, true_index: int | None = None,
                       scale: float = 1.0) -> go.Figure:
    """Bar chart of class probabilities ``proba`` (K,); the top class highlighted, the true class marked."""
    proba = np.asarray(proba, dtype=np.float64).ravel()
    top = int(np.argmax(proba))
    colours = [HIGHLIGHT if k == top else MUTED for k in range(len(proba))]
    names = list(class_names)
    if true_index is not None and 0 <= true_index < len(names):
        names[true_index] = f"{names[true_index]} (true)"
    fig = go.Figure(go.Bar(
        x=names, y=proba, marker_color=colours, text=[f"{p:.0%}" if p >= 0.005 else "" for p in proba],
        textposition="outside", hovertemplate="%{x}: %{y:.4f}<extra></extra>", cliponaxis=False,
    ))
    fig.update_xaxes(title_text="class", type="category")
    fig.update_yaxes(title_text="probability", range=[0, 1.12], tickformat=".0%")
    return style(fig, title, height=300, scale=scale, showlegend=False)


def conv_step_figure(image: np.ndarray, kernel: np.ndarray, steps: list[dict], index: int,
                     numbers: bool | None = None, scale: float = 1.0) -> go.Figure:
    """One moment of a convolution: the image with the window outlined, the patch under it, the filter,
    their elementwise product (summing to the output value), and the output map filled up to this step.

    ``steps`` is ``cnnviz.viz.explain.conv_step_through(image, kernel)``: dicts with row, col, patch, product,
    value, in output order. ``numbers``: write values in the image and output cells (default: only for small
    images; a real 28×28 image shows them on hover). A small example sits on one row of five panels; a large
    image goes on a first row with the output, and the patch, filter and product (with their numbers) below.
    """
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    h, w = image.shape
    kh, kw = kernel.shape
    s = steps[index]
    rows_out = max(st["row"] for st in steps) + 1
    cols_out = max(st["col"] for st in steps) + 1
    values = np.array([st["value"] for st in steps], dtype=np.float64)  # (P,)
    out = np.full((rows_out, cols_out), np.nan)  # the output computed so far; NaN = not yet
    out.ravel()[: index + 1] = values[: index + 1]  # steps are in reading order
    r0, c0 = _window_origin(steps, index, (h, w), (kh, kw), (rows_out, cols_out))
    small = max(h, w) <= 10
    show_big = numbers if numbers is not None else small
    integers = all(np.allclose(a, np.round(a)) for a in (image, kernel))
    fmt = "%{z:.4~g}" if integers else "%{z:.2f}"  # d3-format: 9, 32 / 0.25, -0.13
    panels = [  # (title, z, colour kind, numbers in the cells)
        ("image (window outlined)", image, "image", show_big),
        ("patch", np.asarray(s["patch"], dtype=np.float64), "image", True),
        ("filter", kernel, "diverging", True),
        ("patch ⊙ filter", np.asarray(s["product"], dtype=np.float64), "diverging", True),
        (f"output  (Σ = {s['value']:.4g})", out, "output", show_big),
    ]
    # One figure built from plain dicts with the panel domains computed here: make_subplots and per-axis
    # updates cost more than the whole rest of a slider move.
    if small:
        widths = [max(p[1].shape[1], 4) for p in panels]
        gap = 0.04
        avail = 1.0 - gap * (len(panels) - 1)
        x0s = np.concatenate([[0.0], np.cumsum([w / sum(widths) * avail + gap for w in widths])])
        domains = [((x0s[j], x0s[j] + widths[j] / sum(widths) * avail), (0.0, 1.0)) for j in range(5)]
        height = min(round(1000 * max(widths) / sum(widths)), 330) + 120
    else:  # first row: image | output; second row: patch | filter | product
        top, bottom = (0.5215, 1.0), (0.0, 0.3915)  # rows 0.55 : 0.45 of the height with a 0.13 gap
        domains = [((0.0, 0.47), top), ((0.0, 0.2933), bottom), ((0.3533, 0.6467), bottom),
                   ((0.7067, 1.0), bottom), ((0.53, 1.0), top)]
        height = 700
    img_range = (min(0.0, float(image.min())), max(1.0, float(image.max())))
    r_out = symmetric_range(values)
    traces, layout, titles = [], {}, []
    for j, (name, z, kind, show_numbers) in enumerate(panels):
        if kind == "image":
            colour = {"colorscale": "Greys", "reversescale": True, "zmin": img_range[0], "zmax": img_range[1]}
        else:  # the output keeps one range for the whole pass, so colours do not shift while it plays
            r = r_out if kind == "output" else symmetric_range(z)
            colour = {"colorscale": DIVERGING, "zmin": -r, "zmax": r, "zmid": 0.0}
        big_cells = max(z.shape) <= 4
        sfx = "" if j == 0 else str(j + 1)  # panel j on axes x{j+1}, y{j+1}
        traces.append({
            "type": "heatmap", "z": z, "showscale": False, "texttemplate": fmt if show_numbers else None,
            "textfont": {"size": _px(28 if big_cells else 14, scale)},  # readable from the back
            "hovertemplate": f"{name.split('  ')[0]}<br>row %{{y}}, col %{{x}}<br>%{{z:.4g}}<extra></extra>",
            "xgap": 1, "ygap": 1, "hoverongaps": False, "xaxis": f"x{sfx}", "yaxis": f"y{sfx}", **colour})
        (xa, xb), (ya, yb) = domains[j]
        hide = {"showticklabels": False, "ticks": "", "showgrid": False, "zeroline": False,
                "constrain": "domain"}
        # full extent even where the output is not computed yet (NaN); row 0 at the top
        layout[f"xaxis{sfx}"] = {"domain": [xa, xb], "anchor": f"y{sfx}", "range": [-0.5, z.shape[1] - 0.5],
                                 **hide}
        layout[f"yaxis{sfx}"] = {"domain": [ya, yb], "anchor": f"x{sfx}", "range": [z.shape[0] - 0.5, -0.5],
                                 "autorange": False, "scaleanchor": f"x{sfx}", **hide}
        titles.append({"text": name, "x": (xa + xb) / 2, "y": yb, "xref": "paper", "yref": "paper",
                       "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                       "font": {"size": _px(12, scale)}})
    layout["xaxis"]["title"] = {"text": "column"}
    layout["yaxis"]["title"] = {"text": "row"}
    layout["annotations"] = titles
    layout["shapes"] = [
        {"type": "rect", "x0": c0 - 0.5, "x1": c0 + kw - 0.5, "y0": r0 - 0.5, "y1": r0 + kh - 0.5,
         "line": {"color": HIGHLIGHT, "width": 3}, "xref": "x", "yref": "y"},
        {"type": "rect", "x0": s["col"] - 0.5, "x1": s["col"] + 0.5, "y0": s["row"] - 0.5,
         "y1": s["row"] + 0.5, "line": {"color": HIGHLIGHT, "width": 3}, "xref": "x5", "yref": "y5"}]
    fig = go.Figure({"data": traces, "layout": layout})
    # rows, columns and outputs counted from 1 in the text, like filters
    title = (f"Step {index + 1} of {len(steps)}: window at row {r0 + 1}, column {c0 + 1} → "
             f"output row {s['row'] + 1}, column {s['col'] + 1} = Σ patch ⊙ filter = {s['value']:.4g}")
    style(fig, title, height=height, scale=scale)
    fig.update_layout(plot_bgcolor="#e9edf3")  # grey behind the cells: white and empty cells stay visible
    return fig


def _window_origin(steps: list[dict], index: int, image_hw: tuple[int, int], kernel_hw: tuple[int, int],
                   out_hw: tuple[int, int]) -> tuple[int, int]:
    """Top-left pixel of the window for ``steps[index]``: ``steps`` may carry it (keys ``top``/``left``);
    otherwise it is the output position times the stride implied by the image, kernel and output sizes."""
    s = steps[index]
    if "top" in s and "left" in s:
        return int(s["top"]), int(s["left"])
    (h, w), (kh, kw), (ho, wo) = image_hw, kernel_hw, out_hw
    sr = (h - kh) // (ho - 1) if ho > 1 else 1
    sc = (w - kw) // (wo - 1) if wo > 1 else 1
    return s["row"] * sr, s["col"] * sc


def series_figure(steps: np.ndarray, series: dict[str, np.ndarray], title: str, y_title: str,
                  log_y: bool = True, reference: float | None = None, reference_label: str = "",
                  scale: float = 1.0, what: str = "values", empty_reason: str | None = None) -> go.Figure:
    """Lines over training steps, one per parameter (``series``: name -> values (S,)), on a log y axis so
    that gradients that shrink by orders of magnitude (sigmoid saturating) stay visible. ``reference`` draws a
    dashed horizontal guide (e.g. an update/parameter ratio of 1e-3). A log chart with nothing to draw says
    why in its middle (``log_empty_message``: ``what`` names the values, ``empty_reason`` explains zeros)."""
    # Built as one dict: per-axis update calls re-validate the layout each time and cost more than the data.
    steps = np.asarray(steps)
    traces = []
    for name, values in series.items():
        v = np.asarray(values, dtype=np.float64)
        if log_y:
            v = np.where(v > 0, v, np.nan)  # log axis: zeros and negatives cannot be drawn
        traces.append({"type": "scatter", "x": steps, "y": v, "name": name,
                       "mode": "lines+markers" if len(v) < 30 else "lines",
                       "hovertemplate": f"{name}<br>step %{{x}}<br>%{{y:.3g}}<extra></extra>"})
    # Whole steps only; on a log axis label only the powers of ten once the data spans a few of them.
    xaxis = {"title": {"text": "step"}, "tickformat": "d",
             "dtick": 1 if steps.size and steps.max() - steps.min() <= 10 else None}
    yaxis = {"title": {"text": y_title}, "type": "log" if log_y else "linear", "exponentformat": "power",
             "automargin": True}
    shapes, annotations = [], []
    if reference is not None:
        shapes.append({"type": "line", "xref": "x domain", "x0": 0, "x1": 1, "yref": "y", "y0": reference,
                       "y1": reference, "line": {"dash": "dash", "color": MUTED}})
        annotations.append({"text": reference_label, "xref": "x domain", "x": 1, "yref": "y",
                            "y": math.log10(reference) if log_y and reference > 0 else reference,
                            "xanchor": "right", "yanchor": "bottom", "showarrow": False})
    if log_y:
        vals = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in series.values()] or [[]])
        vals = vals[np.isfinite(vals) & (vals > 0)]
        if reference is not None and reference > 0:
            vals = np.append(vals, reference)
        if vals.size:  # our own tick texts: Plotly's log ticks draw exponents and 2s/5s at 70 % size
            tv, tt = log_ticks(float(vals.min()), float(vals.max()))
            yaxis.update(tickmode="array", tickvals=tv, ticktext=tt)
    note = log_empty_message(series, what, empty_reason) if log_y else None
    if note:
        annotations.append({"text": note, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
                            "showarrow": False, "font": {"size": _px(14, scale), "color": "#5b6577"},
                            "bgcolor": "white"})
        yaxis.update(showticklabels=False, dtick=None)
    layout = _style_layout(title, 360, scale)
    layout["margin"].update(b=round(90 * scale), l=round(70 * scale))
    layout.update(xaxis=xaxis, yaxis=yaxis, shapes=shapes, annotations=annotations,
                  legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0, "title": {"text": ""}})
    return go.Figure({"data": traces, "layout": layout})


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def number(v: float, digits: int = 2) -> str:
    """A tick text for people in full-size characters: 0, 0.25, 120, 2.4×10⁻⁴ (never "0e+0")."""
    v = float(v)
    if v == 0 or not np.isfinite(v):
        return "0" if v == 0 else str(v)
    if 1e-3 <= abs(v) < 1e4:
        return f"{v:.{digits + 1}g}".replace("-", "−")
    exp = int(math.floor(math.log10(abs(v))))
    mant = round(v / 10.0**exp, digits - 1)
    if abs(mant) >= 10:
        mant, exp = mant / 10, exp + 1
    head = "" if mant == 1 else ("−" if mant == -1 else f"{mant:g}".replace("-", "−") + "×")
    return f"{head}10{str(exp).translate(_SUPERSCRIPT)}"


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Tick values and texts for a log axis over [lo, hi] (both > 0): every decade (every second or third
    when the data spans many), or 1, 2, 5 times a power of ten when it spans less than one decade."""
    lo, hi = min(lo, hi), max(lo, hi)
    e0, e1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    if e1 - e0 >= 2 or math.log10(hi / lo) >= 1:
        step = 1 if e1 - e0 <= 8 else (2 if e1 - e0 <= 16 else 3)
        exps = list(range(e0, e1 + 1, step))
        texts = ["1" if e == 0 else "10" if e == 1 else "10" + str(e).translate(_SUPERSCRIPT) for e in exps]
        return [10.0**e for e in exps], texts  # one notation along the axis
    else:
        vals = [m * 10.0**e for e in range(e0, e1 + 1) for m in (1, 2, 5)]
        vals = [v for v in vals if lo / 2.5 <= v <= hi * 2.5]
    return vals, [number(v) for v in vals]


def log_empty_message(series: dict[str, np.ndarray], what: str = "values",
                      reason: str | None = None) -> str | None:
    """Why a log-scale chart of ``series`` (name -> values (S,)) would be empty, or None when it is not.

    A log axis cannot draw 0 or negative values: if no value is positive and finite the chart says so, e.g.
    "all gradients are exactly 0: every output sigmoid is saturated" (``reason`` is the caller's diagnosis).
    Lines are broken after ~45 characters so the note fits a half-width chart on a projector.
    """
    vals = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in series.values()] or [np.zeros(0)])
    finite = vals[np.isfinite(vals)]
    if np.any(finite > 0):
        return None
    if finite.size == 0:
        text = f"no {what} recorded yet" if vals.size == 0 else f"all {what} are NaN or infinite"
    elif np.all(finite == 0):
        text = f"all {what} are exactly 0" + (f": {reason}" if reason else "")
    else:
        text = f"no positive {what}: a log axis cannot draw 0 or negative values"
    words, lines, cur = text.split(" "), [], ""
    for word in words:
        if cur and len(cur) + 1 + len(word) > 45:
            lines.append(cur)
            cur = word
        else:
            cur = f"{cur} {word}" if cur else word
    return "<br>".join([*lines, cur])


def histogram_grid(values: dict[str, np.ndarray], title: str, bins: int = 40, cols: int = 4,
                   x_title: str = "gradient value", scale: float = 1.0) -> go.Figure:
    """One histogram per named array (e.g. each parameter's gradient), each on its own x range, counts on a
    log axis so that the thin tails show. Binned here with NumPy so the figure stays small."""
    names = list(values)
    cols = max(1, min(cols, len(names)))
    rows = -(-len(names) // cols)
    # One dict with the panel domains computed here (as make_subplots would place them): per-panel axis
    # updates re-validate the whole layout each time.
    hs, vs = 0.08, 0.3 / rows
    w, h = (1 - (cols - 1) * hs) / cols, (1 - (rows - 1) * vs) / rows
    traces, layout, annotations = [], {}, []
    font = {"size": _px(12, scale)}
    for i, name in enumerate(names):
        v = np.asarray(values[name], dtype=np.float64).ravel()
        v = v[np.isfinite(v)]
        r = symmetric_range(v)
        counts, edges = np.histogram(v, bins=bins, range=(-r, r))
        centres = (edges[:-1] + edges[1:]) / 2
        sfx = "" if i == 0 else str(i + 1)
        traces.append({"type": "bar", "x": centres, "y": counts, "width": edges[1] - edges[0],
                       "marker": {"color": TRAIN_COLOUR}, "name": name, "xaxis": f"x{sfx}",
                       "yaxis": f"y{sfx}",
                       "hovertemplate": "%{x:.3g}: %{y} values<extra></extra>"})
        x0, top = (i % cols) * (w + hs), 1 - (i // cols) * (h + vs)
        # our own tick texts (0, ±2.4×10⁻⁴): ".0e" wrote 0 as "0e+0", Plotly's exponents are 70 % size
        e = math.floor(math.log10(r))
        nice = max(m * 10.0**e for m in (1, 2, 5) if m * 10.0**e <= r * 1.0001)  # a round number ≤ r
        ticks = [-nice, 0.0, nice] if np.any(v) else [0.0]  # all zero: the range is only a tiny epsilon
        layout[f"xaxis{sfx}"] = {"domain": [x0, x0 + w], "anchor": f"y{sfx}", "title": {"text": x_title},
                                 "tickmode": "array", "tickvals": ticks,
                                 "ticktext": [number(t) for t in ticks]}
        layout[f"yaxis{sfx}"] = {"domain": [top - h, top], "anchor": f"x{sfx}", "type": "log", "dtick": 1,
                                 "title": {"text": "count" if i % cols == 0 else None}}
        annotations.append({"text": name, "x": x0 + w / 2, "y": top, "xref": "paper", "yref": "paper",
                            "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": font})
        if v.size and not np.any(v):
            annotations.append({"text": "all exactly 0", "x": 0, "y": math.log10(max(1, int(counts.max()))),
                                "xref": f"x{sfx}", "yref": f"y{sfx}", "showarrow": False, "yanchor": "bottom",
                                "font": {"size": _px(12, scale), "color": "#5b6577"}})  # y: log axis units
    layout.update(_style_layout(title, 90 + 230 * rows, scale), annotations=annotations, showlegend=False,
                  bargap=0)
    return go.Figure({"data": traces, "layout": layout})


def sigmoid_figure(z: np.ndarray, title: str = "σ(z) and σ′(z) with this network's pre-activations",
                   scale: float = 1.0, height: int = 330, z_name: str = "z",
                   z_other: np.ndarray | None = None,
                   other_name: str = "z with uniform(0, 1) weights") -> go.Figure:
    """The sigmoid σ(z) and its derivative σ′(z) = σ(1 − σ), with a histogram of the network's current
    pre-activations ``z`` (any shape) on the same z axis (counts on a right-hand axis), so a class sees where
    its units sit: where |z| is large σ′ ≈ 0 and the gradient through the unit vanishes.

    ``z_other`` (any shape): a second set of values to compare with (the lesson: the same digit with the
    tutorial's uniform(0, 1) weights); both histograms are then shares of their values, in percent.
    The z range covers the data (at least ±6, at most ±40); values beyond it are counted in the edge bins.
    The share of units with σ′ < 0.01 (saturated) is written above the plot.
    """
    z = np.asarray(z, dtype=np.float64).ravel()
    z = z[np.isfinite(z)]
    sets = [(z, f"{z_name} of this image's units", MUTED)]
    if z_other is not None:
        zo = np.asarray(z_other, dtype=np.float64).ravel()
        sets = [(z, f"{z_name} of this image's units", TRAIN_COLOUR),
                (zo[np.isfinite(zo)], other_name, MUTED)]
    top = max((float(np.max(np.abs(v))) for v, _, _ in sets if v.size), default=6.0)
    R = float(min(40.0, max(6.0, math.ceil(top))))
    xs = np.linspace(-R, R, 241)  # (241,)
    sig = 0.5 * (1.0 + np.tanh(0.5 * xs))  # σ without overflow
    dsig = sig * (1.0 - sig)
    shares = z_other is not None
    traces = []
    for v, name, colour in sets:
        counts, edges = np.histogram(np.clip(v, -R, R), bins=48, range=(-R, R))
        y = counts / max(v.size, 1) if shares else counts
        traces.append({"type": "bar", "x": (edges[:-1] + edges[1:]) / 2, "y": y, "width": edges[1] - edges[0],
                       "yaxis": "y2", "marker": {"color": colour}, "opacity": 0.55, "name": name,
                       "hovertemplate": f"{z_name} ≈ %{{x:.3g}}: %{{y}}<extra></extra>"})
    s_z = 0.5 * (1.0 + np.tanh(0.5 * z))
    saturated = float(np.mean(s_z * (1.0 - s_z) < 0.01)) if z.size else 0.0
    traces += [
        {"type": "scatter", "x": xs, "y": sig, "mode": "lines", "name": "σ(z)",
         "line": {"color": TRAIN_COLOUR if not shares else "#222", "width": 3},
         "hovertemplate": "σ(%{x:.2f}) = %{y:.3f}<extra></extra>"},
        {"type": "scatter", "x": xs, "y": dsig, "mode": "lines", "name": "σ′(z) = σ(1 − σ)",
         "line": {"color": VAL_COLOUR, "width": 3, "dash": "dash"},
         "hovertemplate": "σ′(%{x:.2f}) = %{y:.4f}<extra></extra>"},
    ]
    layout = _style_layout(title, height, scale)
    # the share of saturated units just above the plot (a second title line would be cut off at the top)
    share = f"{saturated:.0%} of {z.size:,} units have σ′ < 0.01 (saturated: almost no gradient passes)"
    layout["annotations"] = [{"text": share, "x": 0, "y": 1.02, "xref": "paper",
                              "yref": "paper", "xanchor": "left", "yanchor": "bottom", "showarrow": False,
                              "font": {"size": _px(12, scale), "color": "#5b6577"}}]
    # the right axis has its own ticks from 0 (synced to the left axis's grid it read 0.011, 0.118, …)
    y2 = {"title": {"text": "share of values" if shares else "units"}, "overlaying": "y", "side": "right",
          "showgrid": False, "tickmode": "auto", "rangemode": "tozero", "automargin": True}
    if shares:
        y2["tickformat"] = ".0%"
    layout.update(
        xaxis={"title": {"text": z_name}, "range": [-R, R], "zeroline": True, "zerolinecolor": "#c9d0db",
               "gridcolor": "#eef1f6", "automargin": True},
        yaxis={"title": {"text": "σ, σ′"}, "range": [0, 1.05], "gridcolor": "#eef1f6", "automargin": True},
        yaxis2=y2,
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
        margin={"l": round(60 * scale), "r": round(60 * scale), "t": round(85 * scale),
                "b": round(95 * scale)},
        bargap=0, barmode="overlay",
    )
    return go.Figure({"data": traces, "layout": layout})


# --- Draw ---
# Builders for the Draw page: the 28×28 input the network receives, saliency and occlusion maps laid over the
# drawing, and the drawing's feature maps (one tiled heatmap, cheap to redraw after every stroke).


def _overlay_colourscale(opacity: float = 0.85) -> list[list]:
    """``DIVERGING``-like blue-white-red with the middle fully transparent, so 0 shows the image beneath."""
    return [
        [0.0, f"rgba(33, 102, 172, {opacity})"],
        [0.25, f"rgba(103, 169, 207, {opacity * 0.8:.3f})"],
        [0.5, "rgba(247, 247, 247, 0)"],
        [0.75, f"rgba(239, 138, 98, {opacity * 0.8:.3f})"],
        [1.0, f"rgba(178, 24, 43, {opacity})"],
    ]


def _image_axes(fig: go.Figure, size: int) -> None:
    """A square image panel: row 0 at the top, no ticks, a thin frame."""
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, ticks="", range=[-0.5, size - 0.5],
                     constrain="domain", showline=True, linecolor="#d0d5de", mirror=True)
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, ticks="", range=[size - 0.5, -0.5],
                     scaleanchor="x", constrain="domain", showline=True, linecolor="#d0d5de", mirror=True)


def digit_input_figure(image: np.ndarray, title: str = "What the network sees (28×28)", scale: float = 1.0,
                       height: int = 250) -> go.Figure:
    """The (28, 28) input in [0, 1] as the network receives it: white ink on black, hover gives each value."""
    image = np.asarray(image, dtype=np.float32)
    fig = go.Figure(go.Heatmap(z=image, colorscale=IMAGE, zmin=0, zmax=1, showscale=False,
                               hovertemplate="row %{y}, col %{x}<br>value %{z:.2f}<extra></extra>"))
    style(fig, title, height=height, scale=scale)
    fig.update_layout(margin={"l": 10, "r": 10, "t": round(40 * scale), "b": 10})
    _image_axes(fig, image.shape[0])
    return fig


def explanation_overlay(image: np.ndarray, heat: np.ndarray, title: str, colorbar_title: str,
                        scale: float = 1.0, height: int = 270) -> go.Figure:
    """A map ``heat`` (H, W) laid over the digit ``image`` (H, W): red where it is positive, blue negative.

    The digit is drawn dark on white underneath; the map uses a blue-white-red scale centred on 0 whose middle
    is transparent, so pixels that do not matter show the drawing itself. One symmetric colour range.
    """
    image = np.asarray(image, dtype=np.float32)
    heat = np.asarray(heat, dtype=np.float32)
    r = symmetric_range(heat)
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=image, colorscale=[[0, "white"], [1, "#4a4f5c"]], zmin=0, zmax=1,
                             showscale=False, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(
        z=heat, colorscale=_overlay_colourscale(), zmin=-r, zmax=r, zmid=0.0,
        customdata=image, hovertemplate="row %{y}, col %{x}<br>" + colorbar_title
        + " %{z:.3g}<br>ink %{customdata:.2f}<extra></extra>",
        colorbar={"title": {"text": colorbar_title, "side": "right"}, "thickness": _px(10, scale),
                  "len": 0.85,
                  "tickformat": ".1e" if r < 1e-2 else ".2g", "nticks": 5},
    ))
    style(fig, title, height=height, scale=scale)
    fig.update_layout(margin={"l": 10, "r": 10, "t": round(40 * scale), "b": 10})
    _image_axes(fig, image.shape[0])
    return fig


def feature_maps_figure(maps: np.ndarray, title: str, ncols: int = 8, scale: float = 1.0,
                        height: int | None = None, labels: list[str] | None = None,
                        tile_px: float = 80.0) -> go.Figure:
    """Feature maps (F, H, W) (e.g. the first conv layer after its activation) as one tiled heatmap.

    One trace with NaN gaps (cheap to redraw), one shared colour range (``SEQUENTIAL``, or diverging when the
    maps clearly have both signs), a balanced grid of at most ``ncols`` columns, a label above each map
    ("map 1", … unless ``labels``) and hover naming the map, pixel and value.
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim != 3:
        raise ValueError(f"feature_maps_figure expects (F, H, W) maps, got {maps.shape}")
    fig = map_grid(maps, title, kind="sequential", labels=labels, cols=ncols, colorbar_title="activation",
                   scale=scale, panel_px=tile_px)
    if height:
        fig.layout.height = height
    return fig
