"""A box editor on the photo for the review page: draw, move, resize and delete regions with the mouse.

A reviewer correcting a detection thinks in places on the photo, not in normalised coordinates, so the photo is
shown with the model's boxes pre-filled as SVG rectangles (``box_editor.js``). A Streamlit v2 component renders
it in the page itself (no iframe, nothing fetched from outside), and every finished gesture sends the whole list of
regions back as the component's state; :func:`edit_boxes` returns that list, or the model's boxes until the
reviewer changes something.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

import streamlit as st
from PIL import Image

from autoinspect.domain import Annotation
from autoinspect.drawing import class_colours, jpeg_data_url

EDITOR_SIDE = 1024
"""Longest side of the photo sent to the browser: enough to place a box on a hairline scratch, and a stored
12 MP photo would otherwise travel to the page for each queued answer."""

HTML = """
<div class="box-editor" tabindex="0">
  <div class="toolbar">
    <label>Class <select aria-label="Class of the box"></select></label>
    <button type="button" class="delete">Delete box</button>
    <button type="button" class="reset">Reset to model</button>
    <span class="count"></span>
  </div>
  <div class="stage"><img alt="photo under review" draggable="false" /><svg></svg></div>
  <p class="help">Drag on the photo to draw a box of the chosen class. Click a box to select it, drag it to move
  it, drag a corner to resize it; Delete removes it.</p>
</div>
"""

CSS = """
.box-editor { font-family: var(--st-font); color: var(--st-text-color); outline: none; }
.toolbar { display: flex; gap: 0.5rem; align-items: center; margin-bottom: 0.4rem; flex-wrap: wrap; }
.toolbar button, .toolbar select {
  font: inherit; padding: 0.2rem 0.6rem; border-radius: 0.4rem;
  border: 1px solid var(--st-border-color, #ccc); background: var(--st-secondary-background-color); color: inherit;
}
.toolbar button:disabled { opacity: 0.5; }
.stage { position: relative; line-height: 0; user-select: none; }
.stage img { width: 100%; height: auto; display: block; }
.stage svg { position: absolute; inset: 0; width: 100%; height: 100%; cursor: crosshair; touch-action: none; }
rect.box { fill-opacity: 0.08; stroke-width: 3; vector-effect: non-scaling-stroke; cursor: move; }
rect.box.selected { fill-opacity: 0.25; stroke-dasharray: 6 3; }
rect.handle { fill: white; stroke: black; stroke-width: 1; vector-effect: non-scaling-stroke; cursor: nwse-resize; }
text { pointer-events: none; font-family: var(--st-font); paint-order: stroke; stroke: white; stroke-width: 3px; }
.help { font-size: 0.85rem; opacity: 0.7; line-height: 1.3; }
.count { opacity: 0.8; }
"""

_component = st.components.v2.component(
    "autoinspect_box_editor",
    html=HTML,
    css=CSS,
    js=resources.files("autoinspect.ui").joinpath("box_editor.js").read_text(encoding="utf-8"),
)


@st.cache_data(max_entries=64, show_spinner=False)
def photo_url(photo: bytes, side: int = EDITOR_SIDE) -> str:
    """``photo`` as a JPEG data URL no longer than ``side`` on its longest side (the boxes are normalised, so the
    editor's scale does not matter to them); cached, since every rerun of the page shows the whole queue."""
    return jpeg_data_url(Image.open(io.BytesIO(photo)), side, quality=90)


def _rows(regions: Sequence[Annotation]) -> list[dict[str, Any]]:
    return [{"label": region.label, **region.box.model_dump()} for region in regions]


def edit_boxes(photo: bytes, regions: Sequence[Annotation], classes: Sequence[str], key: str) -> list[dict[str, Any]]:
    """Show the editor with ``regions`` pre-filled; the regions as the reviewer left them, as rows ``label, x1, y1,
    x2, y2`` (normalised), for :func:`~autoinspect.ui.views.review.labels_from_rows` to check."""
    model = _rows(regions)
    names = list(dict.fromkeys([*classes, *(row["label"] for row in model)]))  # draw_regions' order and colours
    held = st.session_state.get(key)
    current = held["boxes"] if isinstance(held, Mapping) and isinstance(held.get("boxes"), list) else model
    result = _component(
        key=key,
        data={
            "image": photo_url(photo),
            "boxes": current,
            "model": model,
            "classes": names,
            "colours": class_colours(names),
        },
        default={"boxes": model},
        on_boxes_change=lambda: None,
    )
    boxes = result.get("boxes") if isinstance(result, Mapping) else None
    return list(boxes) if isinstance(boxes, list) else model
