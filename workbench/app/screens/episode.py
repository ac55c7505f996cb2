"""One episode, turn by turn: the four parts, and every generated token coloured by a metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from trainer.store import RunReader, StoreError, TurnTokens
from workbench.app.widgets.turn_view import TurnView
from workbench.formatting import clean, signed, status_style
from workbench.token_view import METRIC_HELP, METRICS, decoder_for, detail, metric_values, token_strip


class EpisodeScreen(Screen):
    """Step through turns with n/p, through tokens with left/right; m changes the colouring."""

    BINDINGS = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("n", "turn(1)", "Next turn"),
        Binding("p", "turn(-1)", "Prev turn"),
        Binding("left,h", "token(-1)", "Token ←"),
        Binding("right,l", "token(1)", "Token →"),
        Binding("home", "token_edge(0)", "First token", show=False),
        Binding("end", "token_edge(1)", "Last token", show=False),
        Binding("m", "metric", "Metric"),
        Binding("f", "flag", "Flag"),
        Binding("x", "rerun", "Re-run"),
    ]

    def __init__(self, run_dir: Path, episode_id: int) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.episode_id = episode_id
        self.record: dict[str, Any] | None = None
        self.tokens: list[TurnTokens] = []
        self.turn_index = 0
        self.token_index = 0
        self.metric = "advantage"
        self.model: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("loading…", id="episode-header")
        yield Static("", id="turn-nav")
        yield TurnView(id="episode-turn", max_lines=14)
        yield Static("", id="token-title")
        with VerticalScroll(id="token-scroll"):
            yield Static("", id="token-strip")
        yield Static("", id="token-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        try:
            with RunReader(self.run_dir) as reader:
                record = reader.episode(self.episode_id)
                tokens = reader.turn_tokens(self.episode_id)
                model = (reader.run_info().config.get("model") or {}).get("name")
        except StoreError as exc:
            self.app.call_from_thread(self.query_one("#episode-header", Static).update, Text(str(exc), style="red"))
            return
        decoder_for(model, self.run_dir)  # load the tokenizer off the UI thread
        self.app.call_from_thread(self._loaded, record, tokens, model)

    def _loaded(self, record: dict[str, Any], tokens: list[TurnTokens], model: str | None) -> None:
        self.record, self.tokens, self.model = record, tokens, model
        row = record["_row"]
        header = Text()
        header.append(f"episode #{row.id}", style="bold")
        header.append(f" · iteration {row.iteration} · {row.phase} · {row.suite} · task {row.task_id} · ")
        outcome = "success" if row.success else (row.final_status or row.outcome)
        header.append(f"{row.outcome} {signed(row.total_reward)}", style=status_style(outcome))
        header.append(f" · {row.n_turns} turns\n", style="")
        header.append(clean(row.instruction), style="italic")
        self.query_one("#episode-header", Static).update(header)
        self.show_turn()

    @property
    def turns(self) -> list[dict[str, Any]]:
        return [t for t in (self.record or {}).get("turns") or [] if isinstance(t, dict)]

    def _turn_tokens(self) -> TurnTokens | None:
        return next((t for t in self.tokens if t.turn_index == self.turn_index), None)

    def show_turn(self) -> None:
        turns = self.turns
        nav = self.query_one("#turn-nav", Static)
        if not turns:
            nav.update(Text("this episode has no turns", style="dim"))
            return
        self.turn_index = min(max(0, self.turn_index), len(turns) - 1)
        nav.update(Text.assemble((f"turn {self.turn_index + 1}/{len(turns)}", "bold"), ("   n/p: next/previous", "dim")))
        self.query_one("#episode-turn", TurnView).show(turns[self.turn_index])
        self.token_index = 0
        self.show_tokens()

    def show_tokens(self) -> None:
        tokens = self._turn_tokens()
        title = Text.assemble(("tokens", "bold"), (f" · colour: {self.metric} (m) — {METRIC_HELP[self.metric]}", "dim"))
        self.query_one("#token-title", Static).update(title)
        strip = self.query_one("#token-strip", Static)
        info = self.query_one("#token-detail", Static)
        if tokens is None or not tokens.token_ids:
            strip.update(Text("no tokens stored for this turn", style="dim"))
            info.update("")
            return
        decoder = decoder_for(self.model, self.run_dir)
        pieces = decoder.pieces(tokens.token_ids) if decoder else [f"#{t} " for t in tokens.token_ids]
        self.token_index = min(max(0, self.token_index), len(pieces) - 1)
        values = metric_values(tokens, self.metric)
        strip.update(token_strip(pieces, values, self.metric, self.token_index))
        line = Text(detail(tokens, self.token_index, pieces[self.token_index]).describe())
        if decoder is None:
            line.append("   (tokenizer.json of the model not found: showing ids)", style="dim")
        info.update(line)

    def action_turn(self, step: int) -> None:
        self.turn_index += step
        self.show_turn()

    def action_token(self, step: int) -> None:
        self.token_index += step
        self.show_tokens()

    def action_token_edge(self, end: int) -> None:
        tokens = self._turn_tokens()
        self.token_index = (len(tokens.token_ids) - 1) if (end and tokens) else 0
        self.show_tokens()

    def action_metric(self) -> None:
        self.metric = METRICS[(METRICS.index(self.metric) + 1) % len(METRICS)]
        self.show_tokens()

    def action_flag(self) -> None:
        self.app.flag_episode(self.episode_id)

    def action_rerun(self) -> None:
        self.app.rerun_episode(self.episode_id)
