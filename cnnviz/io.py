"""Kept importable under its first name (the contract, shared/DESIGN.md §2); see the module imported below."""

from cnnviz.train.model_file import *  # noqa: F403
