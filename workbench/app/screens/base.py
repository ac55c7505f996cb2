"""What every workbench screen shares: a typed handle on the app, and whether it can take updates."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

if TYPE_CHECKING:
    from workbench.app.app import WorkbenchApp


class WorkbenchScreen(Screen):
    """A screen that follows the app's current run; ``ready`` once its widgets are mounted."""

    ready = False

    def __init__(self) -> None:
        super().__init__()
        self._generation = -1

    @property
    def wb(self) -> WorkbenchApp:
        return self.app  # type: ignore[return-value]

    def on_mount(self) -> None:
        self.ready = True

    @property
    def stale(self) -> bool:
        """Whether another run was opened since this screen last loaded."""
        return self._generation != self.wb.run_generation
