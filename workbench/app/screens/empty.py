"""The welcome screen of a runs folder with no runs: one obvious action, start training."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Button, Footer, Static

INTRO = (
    "Train the embedded tiny Qwen3 to call MCP tools with PPO, on this CPU, in minutes.\n"
    "Episodes appear live as they are played: what the model wrote, the call parsed out of it,\n"
    "what the MCP server answered, and the reward. Pause, chat with the policy, and replay any\n"
    "episode down to the token while it trains."
)


class EmptyScreen(Screen):
    """Shown when the runs folder holds no run yet."""

    BINDINGS = [
        Binding("s", "app.start_default", "Start training"),
        Binding("n", "app.new_run", "Options…"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="welcome"):
            yield Static("qwen-workbench", id="welcome-title")
            yield Static(self._where(), id="welcome-where")
            yield Static(INTRO, id="welcome-intro")
            with Center():
                yield Button("Start training the tiny model on the CPU  (s)", variant="success", id="welcome-start")
            yield Static("n: choose model, preset, suites and device first    ctrl+p: every command", id="welcome-hint")
        yield Footer()

    def _where(self) -> str:
        runs_dir = getattr(self.app, "runs_dir", "runs")
        return f"No runs yet in {runs_dir}/"

    def on_mount(self) -> None:
        self.query_one("#welcome-start", Button).focus()

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "welcome-start":
            await self.app.run_action("app.start_default")
