"""Look of the dashboard: colors, one stylesheet, and helpers that apply it.

Panel renders every component in its own shadow root, so page-wide CSS does not reach inside:
HTML panes get the stylesheet through ``stylesheets=`` and layouts get inline ``styles=``.
"""

from __future__ import annotations

import html
import weakref
from collections.abc import Callable
from typing import Any

import pandas as pd
import panel as pn

ACCENT = "#0b4f8a"
HEADER = "#0a2f57"
GREEN, RED, BLUE, GREY = "#2da44e", "#cf222e", "#0969da", "#8c959f"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

CSS = """
:host { font-family: __FONT__; }
.ap-h { font-size: 1.15em; font-weight: 650; margin: 2px 0 4px 0; color: #1f2328; }
.ap-h3 { font-size: 1.02em; font-weight: 650; margin: 0 0 2px 0; color: #1f2328; }
.ap-muted { color: #57606a; font-size: .9em; }
.ap-empty { color: #57606a; padding: 14px 14px; border: 1px dashed #d0d7de;
  border-radius: 8px; background: #f6f8fa; font-size: .95em; }
.ap-card-head { display: flex; align-items: center; gap: 14px; flex-wrap: wrap; }
.ap-badge { font-weight: 700; padding: 3px 12px; border-radius: 999px; font-size: .95em;
  letter-spacing: .02em; }
.ap-positive { background: #dafbe1; color: #116329; border: 1px solid #4ac26b; }
.ap-negative { background: #ffebe9; color: #a40e26; border: 1px solid #ff8182; }
.ap-unknown { background: #eaeef2; color: #57606a; }
.ap-confidence { font-weight: 600; color: #1f2328; }
.ap-version { color: #57606a; font-size: .85em; margin-left: auto;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.ap-tweet { margin: 10px 0 2px 0; padding: 4px 12px; border-left: 3px solid #d0d7de;
  color: #1f2328; font-size: 1.02em; white-space: pre-wrap; word-break: break-word; }
.ap-note { font-size: .92em; color: #57606a; }
.ap-ok { color: #116329; font-weight: 600; }
.ap-err { color: #a40e26; font-weight: 600; }
.ap-status { display: inline-flex; align-items: center; gap: 8px; color: #fff; font-size: .92em;
  white-space: nowrap; background: rgba(255,255,255,.1); padding: 5px 12px;
  border-radius: 999px; }
.ap-dot { width: 10px; height: 10px; border-radius: 50%; background: var(--dot);
  box-shadow: 0 0 0 2px rgba(255,255,255,.5); }
.ap-nav { display: flex; gap: 6px; }
.ap-nav a { color: #fff; text-decoration: none; padding: 6px 12px; border-radius: 6px;
  font-weight: 500; font-size: 1.02em; }
.ap-nav a:hover { background: rgba(255,255,255,.15); }
.ap-nav a.active { background: rgba(255,255,255,.22); }
.ap-kpi { border: 1px solid #d0d7de; border-radius: 10px; padding: 12px 16px;
  background: #fff; box-shadow: 0 1px 2px rgba(31,35,40,.06); }
.ap-kpi-title { color: #57606a; font-size: .8em; text-transform: uppercase;
  letter-spacing: .06em; font-weight: 600; }
.ap-kpi-value { font-size: 2em; font-weight: 700; color: __ACCENT__; line-height: 1.3; }
.ap-kpi.bad .ap-kpi-value { color: #cf222e; }
.ap-kpi-detail { color: #57606a; font-size: .85em; }
.ap-served { padding: 2px 0 6px 0; }
.ap-muted, .ap-warn, .ap-served, .ap-empty { overflow-wrap: anywhere; }
.ap-warn { background: #fff8c5; border: 1px solid #d4a72c; color: #4d2d00; padding: 8px 12px;
  border-radius: 6px; margin: 6px 0; font-size: .92em; }
.ap-served b { font-weight: 600; }
.ap-drift-state { font-weight: 600; padding: 6px 12px; border-radius: 6px; margin: 2px 0; }
.ap-drift-stable { background: #dafbe1; color: #116329; }
.ap-drift-drifting { background: #ffebe9; color: #a40e26; }
.ap-drift-collecting, .ap-drift-untracked { background: #f6f8fa; color: #57606a; }
.ap-quality-row { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr));
  gap: 10px; }
.ap-quality-state { font-weight: 600; padding: 6px 12px; border-radius: 6px; margin: 2px 0;
  background: #f6f8fa; color: #57606a; }
.ap-explain { line-height: 2; color: #1f2328; padding: 0 12px; }
.ap-tok { padding: 2px 5px; border-radius: 4px; margin-right: 3px; white-space: nowrap;
  border-bottom: 2px solid transparent; cursor: help; }
.ap-tok-pos { border-bottom-color: #4ac26b; }
.ap-tok-neg { border-bottom-color: #ff8182; }
.ap-explain-legend { color: #57606a; font-size: .85em; padding: 0 12px; }
.ap-uncertain { background: #fff8c5; color: #7d4e00; border: 1px solid #d4a72c; }
.ap-gauge { height: 8px; background: #eaeef2; border-radius: 4px; margin: 8px 0 0 0;
  overflow: hidden; }
.ap-gauge > div { height: 100%; border-radius: 4px; }
.ap-bar { display: flex; align-items: center; gap: 6px; }
.ap-bar > div { flex: none; max-width: 60px; }
@media (max-width: 600px) {
  .ap-status { white-space: normal; font-size: .85em; padding: 4px 10px; }
  .ap-version { margin-left: 0; }
  .ap-nav a { padding: 4px 8px; }
}
""".replace("__FONT__", FONT).replace("__ACCENT__", ACCENT)

# The template's own header lives outside Panel's shadow roots: page-wide CSS (raw_css) reaches it.
PAGE_CSS = """
@media (max-width: 700px) {
  #header { height: auto; min-height: 44px; flex-wrap: wrap; padding: 6px 8px; }
  .app-header { display: block; white-space: normal; width: 100%; }
  .app-header .title { white-space: normal; font-size: 1.25em; line-height: 1.3; margin: 0; }
  #header-items { flex-wrap: wrap; padding-left: 0; row-gap: 4px; }
  #main { padding: 0 !important; }
  .pn-busy-container { display: none; }
}
"""

CARD_STYLES = {
    "background": "#ffffff",
    "border": "1px solid #d0d7de",
    "border-radius": "10px",
    "box-shadow": "0 1px 3px rgba(31,35,40,.07)",
    "padding": "10px 8px",
}


NARROWEST = 300
"""Width (px) under which a side-by-side item of a `wrapping_row` moves to the next line: a
phone (390 px) gets one column, a laptop (1280 px) items side by side."""
WRAP_CSS = ":host { flex-wrap: wrap; }"


def wrapping_row(*objects: Any, narrowest: int = NARROWEST, **params: Any) -> pn.Row:
    """A row whose items wrap onto the next line when the window cannot give each
    `narrowest` pixels, instead of squeezing them.

    The width is CSS (``flex-basis`` and ``min-width`` on each item), not Bokeh's
    ``min_width``: Bokeh adds its items' minimum widths up into the row's, and the row's into
    the page's, which then runs off a phone's screen instead of wrapping."""
    params.setdefault("sizing_mode", "stretch_width")
    item_css = (
        f":host {{ flex: 1 1 {narrowest}px !important; min-width: {narrowest}px !important; }}"
    )
    for item in objects:
        item.stylesheets = [*item.stylesheets, item_css]
    return pn.Row(*objects, stylesheets=[WRAP_CSS], **params)


_SHOWN: weakref.WeakKeyDictionary[pn.viewable.Viewable, Any] = weakref.WeakKeyDictionary()
_NOTHING = object()


def data_changed(pane: pn.viewable.Viewable, data: Any) -> bool:
    """Whether `data` differs from what `pane` was last drawn from (and remember `data`).

    Building a plot (a Bokeh model per glyph) is the costly part of a refresh, and a periodic
    refresh mostly reads the same numbers: redrawing them anyway keeps the page's event loop
    busy, so clicks and a new window wait behind plots nobody asked for."""
    shown = _SHOWN.get(pane, _NOTHING)
    if shown is not _NOTHING and _same(shown, data):
        return False
    _SHOWN[pane] = data
    return True


def draw_if_changed(pane: pn.pane.HoloViews, data: Any, build: Callable[[], Any]) -> None:
    """Give `pane` the plot `build` makes, unless it already shows a plot of equal `data`."""
    if data_changed(pane, data) or pane.object is None:
        pane.object = build()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        return isinstance(a, pd.DataFrame) and isinstance(b, pd.DataFrame) and a.equals(b)
    return bool(a == b)


def show_items(row: pn.Row, shown: bool) -> None:
    """Show or hide what a `wrapping_row` holds, never the row itself: a row hidden when the
    page is first drawn lays its items out at zero height once shown again, so the card
    stays empty (seen in Chromium with Bokeh's flex layout)."""
    for item in row.objects:
        item.visible = shown


def html_pane(text: Any, **params: Any) -> pn.pane.HTML:
    """An HTML pane that knows the dashboard's classes."""
    return pn.pane.HTML(text, stylesheets=[CSS], **params)


def card(*objects: Any, css_class: str = "", **params: Any) -> pn.Column:
    """A white bordered card; `css_class` names it for tests and for the browser."""
    params.setdefault("sizing_mode", "stretch_width")
    params.setdefault("margin", (8, 5))
    return pn.Column(
        *objects,
        styles=CARD_STYLES,
        css_classes=[c for c in ("ap-card", css_class) if c],
        **params,
    )


def heading(text: str, level: int = 2, **params: Any) -> pn.pane.HTML:
    css = "ap-h" if level == 2 else "ap-h3"
    params.setdefault("margin", (4, 10, 0, 10))
    return html_pane(f'<div class="{css}">{html.escape(text)}</div>', **params)


def empty(text: str) -> pn.pane.HTML:
    return html_pane(
        f'<div class="ap-empty">{html.escape(text)}</div>',
        sizing_mode="stretch_width",
        margin=(5, 10),
    )


def button_look(color: str, variant: str = "solid") -> dict[str, str]:
    """Button color and variant, in the names of the installed Panel (``color`` since 1.9)."""
    if "color" in pn.widgets.Button.param:
        return {"color": color, "variant": variant}
    return {"button_type": color, "button_style": variant}
