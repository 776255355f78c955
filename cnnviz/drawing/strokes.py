"""The Draw page's own Clear and Undo, as changes to its drawing state (``cnnviz.ui.state``'s ``draw``),
without Streamlit: a new ``canvas_rev`` gives a freshly mounted canvas, ``initial`` is what it starts with."""

from __future__ import annotations


def clear(d) -> None:
    """Clear: a new canvas key gives an empty canvas (and forgets the uploaded image)."""
    d.canvas_rev += 1
    d.initial = None
    d.objects = []
    d.history = {}
    d.drawing = None
    d.source = "canvas"
    d.upload_error = None


def undo(d) -> None:
    """Undo: remount the canvas with every stroke but the last one.

    A remounted canvas sends no pixels until the next stroke, so the 28×28 digit of the remaining strokes is
    taken from ``d.history`` (the digit seen after each stroke count, recorded as the user drew).
    """
    objects = list(d.objects)[:-1]
    d.canvas_rev += 1
    d.initial = {"objects": objects} if objects else None
    d.objects = objects
    d.source = "canvas"
    d.drawing = d.history.get(len(objects)) if objects else None
