"""Links that open a configuration: the "Share a link" box (Copy link) and opening a link at session start.

The link is built and read by ``cnnviz.train.links`` (pure, validated with RunConfig.from_dict); here it is
only wired to ``st.query_params``. A link carries settings only: never a model, weights or a session id.
"""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from cnnviz.train import links
from cnnviz.ui import resources, session_guard, state
from cnnviz.viz.lesson import N_STEPS
from cnnviz.viz.names import describe_config


def open_link(pages: list, current) -> None:
    """On a browser tab's first run, apply the configuration, page and lesson step in the URL's query
    parameters (validated; bad or unknown ones give a message and their defaults). Call it from app.py after
    ``st.navigation(pages)`` returned ``current``, before the sidebar is drawn.

    Everything goes through the state API: a new configuration is applied with ``state.apply_config`` (Undo
    brings the model before back). A reload that restored this session from the server's store (the URL may
    still hold the link the share box wrote) does not rebuild anything: a link whose configuration is already
    the session's applied one changes nothing but the page and lesson step."""
    a = state.app()
    tab = session_guard.session_key()
    if a.link.read_by == tab or not state.owns_session():
        return
    a.link.read_by = tab
    qp = st.query_params
    params = {k: qp.get_all(k) for k in qp.keys()}
    if not params:
        return
    by_path = {p.url_path: p for p in pages}
    res = links.from_params(
        params,
        pages=tuple(by_path),
        n_steps=N_STEPS,
        default_preset=state.DEFAULT_PRESET,
        max_train_size=resources.max_train_size(),
    )
    msgs: list[tuple[str, str]] = []
    if res.problems:
        msgs.append(
            (
                "warning",
                "This link had settings that cannot be used, so their defaults apply:\n\n"
                + "\n".join(f"- {p}" for p in res.problems),
            )
        )
    if res.config is not None and res.config.to_dict() == a.config.to_dict():
        msgs.append(("info", f"Opened a shared link: {describe_config(res.config)}. These are the settings "
                     "of your current model, which is kept."))
    elif res.config is not None:
        cfg = state.apply_config(res.config.to_dict(), "the shared link")
        if cfg is not None:
            a.notice = None  # this message replaces "Rebuilt" and a reload's "Welcome back": one true story
            msgs.append(("info", f"Opened a shared link: {describe_config(cfg)}. Undo brings your previous "
                         "model back."))
    if res.step is not None:
        state.app().lesson.step = min(max(int(res.step), 1), N_STEPS)
    a.link.messages = msgs
    st.query_params.clear()  # the settings now live in the session; the address bar keeps no stale copy
    if res.page and res.page != current.url_path:
        st.switch_page(by_path[res.page])


def link_messages() -> None:
    """Show (once) what opening a link did, at the top of the page."""
    a = state.app()
    msgs, a.link.messages = a.link.messages, []
    for kind, text in msgs:
        (st.warning if kind == "warning" else st.info)(text, icon=":material/link:")


def _base_url(current) -> str:
    """The app's address without the page's path (the link names its page in ``page=``)."""
    url = st.context.url or "http://localhost:8501/"
    path = "/" + current.url_path
    if current.url_path and url.rstrip("/").endswith(path):
        url = url.rstrip("/")[: -len(path)]
    return url.rstrip("/") + "/"


def _on_copy() -> None:
    if state.owns_session():
        state.app().link.share_on = True


def link_box(current) -> None:
    """Sidebar box: "Copy link" writes the current configuration, page and lesson step into the address bar
    and shows the link (with Streamlit's copy button) to hand to a class."""
    a = state.app()
    with st.sidebar.expander("Share a setting (link)", expanded=a.link.share_on):
        st.button(
            "Copy link",
            key="share_copy",
            on_click=_on_copy,
            icon=":material/link:",
            width="stretch",
            help="A link with this configuration, this page and the lesson step: settings only, "
            "never your model or your session",
        )
        if not a.link.share_on:
            return
        step = a.lesson.step if current.url_path == "lesson" else None
        try:
            params = links.to_params(state.get_config(), page=current.url_path or None, step=step)
        except ValueError as e:
            st.caption(f"No link: {e}.")
            return
        st.query_params.from_dict(params)
        url = _base_url(current) + "?" + urlencode(params)
        st.code(url, language=None, wrap_lines=True)
        st.caption(
            "Copy it with the button at the code's right. It opens these settings (a fresh model, "
            "trained from step 0); the address bar shows it too."
        )
