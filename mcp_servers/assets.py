"""Where the shipped data lives, in a source checkout and in an installed wheel alike."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def assets_dir() -> Path:
    """The folder that holds the shipped assets.

    Installed, the folder is the package ``qwen_workbench_assets``; in a source checkout it is the
    ``assets/`` folder beside this package.
    """
    spec = importlib.util.find_spec("qwen_workbench_assets")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(__file__).resolve().parent.parent / "assets"


def asset_path(*parts: str) -> Path:
    """Path of one shipped asset, e.g. ``asset_path("shop.db")``."""
    return assets_dir().joinpath(*parts)
