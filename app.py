"""cnnviz: watch a convolutional neural network learn. Run with `streamlit run app.py`.

Page config, session initialisation and navigation only; the pages live in cnnviz/ui/.
"""

from __future__ import annotations

import importlib

import streamlit as st

from cnnviz.ui import common, session_guard, sidebar, state

st.set_page_config(page_title="cnnviz · watch a CNN learn", page_icon="🧠", layout="wide",
                   initial_sidebar_state="expanded")

state.init()
session_guard.note_interaction()  # a full run = the user did something (idle pause of live training)
common.inject_css()

PAGES = [  # (module in cnnviz.ui, title, icon, url path)
    ("train", "Train", ":material/model_training:", "train"),
    ("inside", "Inside", ":material/layers:", "inside"),
    ("gradients", "Gradients", ":material/trending_down:", "gradients"),
    ("draw", "Draw", ":material/draw:", "draw"),
    ("evaluate", "Evaluate", ":material/fact_check:", "evaluate"),
]


def _pages() -> list:
    pages = []
    for module, title, icon, url in PAGES:
        try:  # a page still being written must not stop the others (guard removed once all pages exist)
            mod = importlib.import_module(f"cnnviz.ui.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"cnnviz.ui.{module}":
                raise
            continue
        pages.append(st.Page(mod.render, title=title, icon=icon, url_path=url, default=module == "train"))
    return pages


nav = st.navigation(_pages(), position="sidebar")
sidebar.render()
nav.run()
