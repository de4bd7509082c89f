"""Lua scripts shipped beside the state modules, with shared helpers prepended."""

from __future__ import annotations

from importlib import resources


def lua(*names: str) -> str:
    """The named files of this package, joined: helpers first, then the script."""
    return "\n".join(resources.files("state").joinpath(name).read_text() for name in names)
