"""Kept importable under its first name (the contract, shared/DESIGN.md §2); see the module imported below."""

from cnnviz.nn.network import *  # noqa: F403
