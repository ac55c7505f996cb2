"""The Textual workbench: screens and widgets over the run store (logic lives in plain modules)."""

from __future__ import annotations

from workbench.app.app import WorkbenchApp

__all__ = ["WorkbenchApp"]
