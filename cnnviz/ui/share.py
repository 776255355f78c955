"""Links that open a configuration: the "Share a link" box (Copy link) and opening a link at session start.

The link is built and read by ``cnnviz.train.links`` (pure, validated with RunConfig.from_dict); here it is
only wired to ``st.query_params``. A link carries settings only: never a model, weights or a session id.
"""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from cnnviz.train import links
from cnnviz.ui import resources, state
from cnnviz.viz.lesson import N_STEPS

_OPENED = "link_opened"  # session flag: a link is read once, on the session's first run
_MESSAGES = "link_messages"


def open_link(pages: list, current) -> None:
    """On the session's first run, apply the configuration, page and lesson step in the URL's query
    parameters (validated; bad or unknown ones give a message and their defaults). Call it from app.py after
    ``st.navigation(pages)`` returned ``current``, before the sidebar is drawn."""
    ss = st.session_state
    if ss.get(_OPENED):
        return
    ss[_OPENED] = True
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
    if res.config is not None:
        cfg = state.apply_config(res.config.to_dict())
        if cfg is not None:
            msgs.append(("info", f"Opened a shared link: {cfg.describe()}."))
    if res.step is not None:
        ss["lesson_step"] = res.step
    ss[_MESSAGES] = msgs
    st.query_params.clear()  # the settings now live in the session; the address bar keeps no stale copy
    if res.page and res.page != current.url_path:
        st.switch_page(by_path[res.page])


def link_messages() -> None:
    """Show (once) what opening a link did, at the top of the page."""
    for kind, text in st.session_state.pop(_MESSAGES, None) or []:
        (st.warning if kind == "warning" else st.info)(text, icon=":material/link:")


def _base_url(current) -> str:
    """The app's address without the page's path (the link names its page in ``page=``)."""
    url = st.context.url or "http://localhost:8501/"
    path = "/" + current.url_path
    if current.url_path and url.rstrip("/").endswith(path):
        url = url.rstrip("/")[: -len(path)]
    return url.rstrip("/") + "/"


def _on_copy() -> None:
    st.session_state["share_on"] = True


def link_box(current) -> None:
    """Sidebar box: "Copy link" writes the current configuration, page and lesson step into the address bar
    and shows the link (with Streamlit's copy button) to hand to a class."""
    ss = st.session_state
    with st.sidebar.expander("Share a setting (link)", expanded=bool(ss.get("share_on"))):
        st.button(
            "Copy link",
            key="share_copy",
            on_click=_on_copy,
            icon=":material/link:",
            width="stretch",
            help="A link with this configuration, this page and the lesson step: settings only, "
            "never your model or your session",
        )
        if not ss.get("share_on"):
            return
        step = ss.get("lesson_step") if current.url_path == "lesson" else None
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
