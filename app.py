"""cnnviz: watch a convolutional neural network learn. Run with `streamlit run app.py`.

Page config, session state, navigation only; the pages live in cnnviz/ui/.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from cnnviz.ui import common, compare, draw, evaluate, gradients, inside, session_guard, sidebar, state, train
from cnnviz.ui import inspect as inspect_page
from cnnviz.ui import lesson as lesson_page
from cnnviz.ui import share as share_link

FAVICON = Path(__file__).parent / "assets" / "favicon.png"  # an emoji or Material icon is fetched online

st.set_page_config(page_title="cnnviz · watch a CNN learn", page_icon=str(FAVICON), layout="wide",
                   initial_sidebar_state="expanded")

state.init()  # this session's AppState (or the one a reload left in the server's store)
state.attach_cookie()
session_guard.note_interaction()  # a full run = the user did something (idle pause of live training)
common.inject_css()

if not state.owns_session():
    st.warning("This session is now open in another tab or window of this browser: it continues there. "
               "Close this tab, or continue here (the other tab then stops).", icon=":material/tab:")
    st.button("Continue here", on_click=state.take_over, type="primary", key="take_over")
    st.stop()

PAGES = [
    st.Page(train.render, title="Train", icon=":material/model_training:", url_path="train", default=True),
    st.Page(inside.render, title="Inside", icon=":material/layers:", url_path="inside"),
    st.Page(gradients.render, title="Gradients", icon=":material/trending_down:", url_path="gradients"),
    st.Page(draw.render, title="Draw", icon=":material/draw:", url_path="draw"),
    st.Page(evaluate.render, title="Evaluate", icon=":material/fact_check:", url_path="evaluate"),
    st.Page(compare.render, title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page(lesson_page.render, title="Lesson", icon=":material/school:", url_path="lesson"),
    inspect_page.page(),
]

nav = st.navigation(PAGES, position="sidebar")
share_link.open_link(PAGES, nav)  # a shared link's settings, validated, on the session's first run
state.page_switched(nav.url_path or "train")
sidebar.render()
share_link.link_box(nav)
share_link.link_messages()
nav.run()
