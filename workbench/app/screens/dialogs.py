"""Modal dialogs: a yes/no confirmation, and the short new-run form."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from trainer.config import PRESETS
from workbench.runs import DEVICES, NewRun, RunsError, suite_choices


class ConfirmScreen(ModalScreen[bool]):
    """Ask before something that cannot be undone; ``y`` confirms, ``n`` or escape cancels."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm", classes="dialog"):
            yield Static(self.question, id="confirm-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="confirm-yes")
                yield Button("Cancel (n)", id="confirm-no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class NewRunScreen(ModalScreen[NewRun | None]):
    """Model, preset, suites, device (and optional iterations / extra settings); defaults just work."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Start")]

    def __init__(self, defaults: NewRun | None = None) -> None:
        super().__init__()
        self.defaults = defaults or NewRun()

    def compose(self) -> ComposeResult:
        d = self.defaults
        with Vertical(id="new-run", classes="dialog"):
            yield Static("Start a new training run", classes="dialog-title")
            with Grid(id="new-run-form"):
                yield Label("preset")
                yield Select([(name, name) for name in PRESETS], value=d.preset, allow_blank=False, id="nr-preset")
                yield Label("model")
                yield Input(d.model, placeholder="the preset's (tiny = embedded model)", id="nr-model")
                yield Label("suites")
                yield Select([(s, s) for s in suite_choices()], value=d.suite or "all", allow_blank=False, id="nr-suite")
                yield Label("device")
                yield Select(
                    [("the preset's", ""), *[(name, name) for name in DEVICES]],
                    value=d.device,
                    allow_blank=False,
                    id="nr-device",
                )
                yield Label("iterations")
                yield Input(d.iterations, placeholder="the preset's (100 for tiny-cpu)", id="nr-iterations")
                yield Label("more settings")
                yield Input(d.extra, placeholder="rollout.batch_size=8 ppo.clip_eps=0.1", id="nr-extra")
            yield Static("", id="new-run-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Start (ctrl+s)", variant="primary", id="nr-start")
                yield Button("Cancel (esc)", id="nr-cancel")

    def form(self) -> NewRun:
        def value(selector: str) -> str:
            widget = self.query_one(selector)
            raw = widget.value
            return "" if raw is None or raw is Select.NULL else str(raw)

        return NewRun(
            preset=value("#nr-preset") or "tiny-cpu",
            model=value("#nr-model"),
            suite=value("#nr-suite"),
            device=value("#nr-device"),
            iterations=value("#nr-iterations"),
            extra=value("#nr-extra"),
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "nr-start":
            self.action_submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        form = self.form()
        try:
            form.check()
        except RunsError as exc:
            self.query_one("#new-run-error", Static).update(f"[red]{exc}[/]")
            return
        self.dismiss(form)

    def action_cancel(self) -> None:
        self.dismiss(None)
