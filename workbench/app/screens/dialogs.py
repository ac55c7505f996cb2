"""Modal dialogs: a yes/no confirmation, the new-run form, flagging, and picking checkpoints."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, SelectionList, Static
from textual.widgets.option_list import Option

from trainer.config import PRESETS
from workbench.curation_actions import PLAYED_IT, FlagRequest
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


class FormDialog(ModalScreen):
    """A form: the ``SUBMIT_ID`` button, enter in a field or ctrl+s submits; escape or another button cancels."""

    SUBMIT_ID = ""

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == self.SUBMIT_ID:
            self.action_submit()
        else:
            self.dismiss(None)

    def on_input_submitted(self) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)


class NewRunScreen(FormDialog):
    """Model, preset, suites, device (and optional iterations / extra settings); defaults just work."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Start")]
    SUBMIT_ID = "nr-start"

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

    def action_submit(self) -> None:
        form = self.form()
        try:
            form.check()
        except RunsError as exc:
            self.query_one("#new-run-error", Static).update(f"[red]{exc}[/]")
            return
        self.dismiss(form)


# Flags as the picker offers them: (label, kind); kind "" removes the episode's flags.
FLAG_OPTIONS = (("good example", "good"), ("bad example", "bad"), ("bug", "bug"), ("remove its flags", ""))


class FlagScreen(FormDialog):
    """Flag an episode: pick good, bad or bug (or remove its flags), an optional note; enter saves."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Save")]
    SUBMIT_ID = "flag-save"

    def __init__(self, episode_id: int, current: list[str] | None = None) -> None:
        super().__init__()
        self.episode_id = episode_id
        self.current = current or []

    def compose(self) -> ComposeResult:
        with Vertical(id="flag", classes="dialog"):
            yield Static(f"Flag episode #{self.episode_id}", classes="dialog-title")
            if self.current:
                yield Static(f"flagged now: {', '.join(self.current)}", classes="dim")
            yield Select([(label, kind) for label, kind in FLAG_OPTIONS], value="bad", allow_blank=False,
                         id="flag-kind")
            yield Input(placeholder="note (optional): what is wrong or right here", id="flag-note", max_length=500)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (enter)", variant="primary", id="flag-save")
                yield Button("Cancel (esc)", id="flag-cancel")

    def on_mount(self) -> None:
        self.query_one("#flag-note", Input).focus()

    def action_submit(self) -> None:
        kind = self.query_one("#flag-kind", Select).value
        note = self.query_one("#flag-note", Input).value.strip() or None
        self.dismiss(FlagRequest(self.episode_id, "" if kind is Select.NULL else str(kind), note))


class CheckpointScreen(ModalScreen[str | None]):
    """Pick the policy to re-run an episode with; "" means the weights that played it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(id="pick-checkpoint", classes="dialog"):
            yield Static(self.title_text, classes="dialog-title")
            yield OptionList(*[Option(label, id=value or PLAYED_IT) for label, value in self.choices],
                             id="checkpoint-options")
            yield Static("enter picks · esc cancels", classes="dim")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        option_id = event.option.id or PLAYED_IT
        self.dismiss("" if option_id == PLAYED_IT else option_id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class CompareSetupScreen(FormDialog):
    """Choose two or more checkpoints (space toggles) and how many held-out tasks to play."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Compare")]
    SUBMIT_ID = "compare-go"

    def __init__(self, choices: list[str], preselected: list[str]) -> None:
        super().__init__()
        self.choices = choices
        self.preselected = preselected

    def compose(self) -> ComposeResult:
        with Vertical(id="compare-setup", classes="dialog"):
            yield Static("Compare checkpoints on the same held-out tasks", classes="dialog-title")
            yield SelectionList[str](*[(name, name, name in self.preselected) for name in self.choices],
                                     id="compare-choices")
            yield Input(placeholder="tasks (default: the run's eval.num_tasks)", id="compare-n", max_length=6)
            yield Static("", id="compare-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Compare (ctrl+s)", variant="primary", id="compare-go")
                yield Button("Cancel (esc)", id="compare-cancel")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_submit(self) -> None:
        chosen = list(self.query_one(SelectionList).selected)
        text = self.query_one("#compare-n", Input).value.strip()
        error = self.query_one("#compare-error", Static)
        if len(chosen) < 2:
            error.update("[red]choose at least two policies (space toggles)[/]")
            return
        if text and (not text.isdigit() or int(text) < 1):
            error.update("[red]tasks must be a whole number of at least 1[/]")
            return
        self.dismiss((chosen, int(text) if text else None))
