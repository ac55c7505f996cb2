"""Per-token views of a turn: decode ids with the run's own tokenizer and colour them by a metric.

Decoding uses the ``tokenizers`` library on the model folder's ``tokenizer.json``; that library is
Rust with no torch behind it, so the UI process can afford it (transformers it cannot). Where no
tokenizer file can be found (a hub model that is not in the local cache), tokens show as ``#id``.

Metrics per generated token, from the store's ``turn_tokens``:

- ``advantage``: the PPO advantage (green helped the return, red hurt it);
- ``logprob``: the sampling log-probability (green confident, red surprising);
- ``value``: the critic's value estimate;
- ``kl``: ``logprob - ref_logprob``, how far the policy moved from the reference on that token.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rich.text import Text

from trainer.store import TurnTokens

METRICS = ("advantage", "logprob", "value", "kl")
METRIC_HELP = {
    "advantage": "PPO advantage: green helped the return, red hurt it",
    "logprob": "log-probability when sampled: green confident, red surprising",
    "value": "critic value estimate: brighter is higher",
    "kl": "logprob - ref_logprob: how far the policy moved from the reference",
}
TINY_NAMES = ("tiny", "", None)


def _hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")
    return home / "hub"


def tokenizer_file(model: str | None, depth: int = 0) -> Path | None:
    """Where the ``tokenizer.json`` of a model name lives: the embedded tiny model, a local folder
    (or an adapter's base), or a hub id's snapshot in the local Hugging Face cache."""
    if model in TINY_NAMES:
        from mcp_servers.assets import asset_path

        path = asset_path("tiny-qwen3", "tokenizer.json")
        return path if path.is_file() else None
    folder = Path(str(model)).expanduser()
    if folder.is_dir():
        if (folder / "tokenizer.json").is_file():
            return folder / "tokenizer.json"
        adapter = folder / "adapter_config.json"
        if adapter.is_file() and depth < 3:
            try:
                base = json.loads(adapter.read_text(encoding="utf-8")).get("base_model_name_or_path")
            except (OSError, ValueError):
                return None
            return tokenizer_file(base, depth + 1) if base else None
        return None
    if "/" in str(model):
        snapshots = _hub_cache() / f"models--{str(model).replace('/', '--')}" / "snapshots"
        found = sorted(snapshots.glob("*/tokenizer.json"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
        return found[-1] if found else None
    return None


class TokenDecoder:
    """Token id -> the text it stands for, special tokens included, cached per id."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self.path = path
        self._tokenizer = Tokenizer.from_file(str(path))
        self._cache: dict[int, str] = {}

    def piece(self, token_id: int) -> str:
        if token_id not in self._cache:
            try:
                self._cache[token_id] = self._tokenizer.decode([token_id], skip_special_tokens=False)
            except Exception:  # noqa: BLE001 - an id outside the vocabulary shows as its number
                self._cache[token_id] = f"#{token_id}"
        return self._cache[token_id]

    def pieces(self, token_ids: Sequence[int]) -> list[str]:
        return [self.piece(t) for t in token_ids]


def run_tokenizer_file(run_dir: Path | None, model: str | None) -> Path | None:
    """The tokenizer a run's token ids belong to: a ``tokenizer.json`` kept in the run folder wins
    (it survives a rebuilt embedded model), else the model's own."""
    if run_dir is not None and (Path(run_dir) / "tokenizer.json").is_file():
        return Path(run_dir) / "tokenizer.json"
    return tokenizer_file(model)


def decoder_for(model: str | None, run_dir: Path | None = None) -> TokenDecoder | None:
    """The decoder of a run's model, or None when its tokenizer file is not on this machine."""
    path = run_tokenizer_file(run_dir, model)
    return _decoder(path) if path is not None else None


@lru_cache(maxsize=8)
def _decoder(path: Path) -> TokenDecoder | None:
    try:
        return TokenDecoder(path)
    except Exception:  # noqa: BLE001 - a damaged tokenizer file: fall back to ids
        return None


def metric_values(tokens: TurnTokens, metric: str) -> list[float | None]:
    """One value per token for ``metric`` (None where the store has none, e.g. eval episodes)."""
    n = len(tokens.token_ids)
    if metric == "kl":
        if tokens.logprobs is None or tokens.ref_logprobs is None:
            return [None] * n
        return [a - b for a, b in zip(tokens.logprobs, tokens.ref_logprobs, strict=False)]
    source = {"advantage": tokens.advantages, "logprob": tokens.logprobs, "value": tokens.values}.get(metric)
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if source is None:
        return [None] * n
    return [None if v is None or math.isnan(v) else float(v) for v in source][:n] + [None] * max(0, n - len(source))


def _mix(colour: tuple[int, int, int], strength: float) -> str:
    """A background colour: ``colour`` blended into a dark grey by ``strength`` in [0, 1]."""
    base = (40, 40, 40)
    s = max(0.0, min(1.0, strength))
    r, g, b = (round(base[i] + (colour[i] - base[i]) * s) for i in range(3))
    return f"#{r:02x}{g:02x}{b:02x}"


def colour(value: float | None, metric: str, scale: float) -> str:
    """The background of a token: diverging red/green for signed metrics, a ramp for the others."""
    if value is None:
        return "#303030"
    if metric in ("advantage", "kl"):
        strength = abs(value) / scale if scale > 0 else 0.0
        if metric == "kl":
            return _mix((220, 120, 40), strength)
        return _mix((40, 180, 80) if value >= 0 else (210, 60, 60), strength)
    if metric == "logprob":
        # 0 (certain) -> green, scale (most surprising shown) -> red
        t = min(1.0, -value / scale) if scale > 0 else 0.0
        return _mix((round(60 + 160 * t), round(180 - 120 * t), 70), 0.8)
    return _mix((70, 130, 220), (value + scale) / (2 * scale) if scale > 0 else 0.5)


def scale_of(values: Sequence[float | None], metric: str) -> float:
    """The value that gets full colour: the largest magnitude among the turn's tokens."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    return max(finite) if finite else 1.0


def visible(piece: str) -> str:
    """A token as painted: newlines and tabs shown, an empty piece as a dot."""
    if not piece:
        return "∅"
    return piece.replace("\n", "⏎\n").replace("\t", "→").replace("\r", "␍")


def token_strip(pieces: Sequence[str], values: Sequence[float | None], metric: str, selected: int | None) -> Text:
    """The turn's tokens, each on its metric's colour; the selected one underlined and bright."""
    scale = scale_of(values, metric)
    text = Text()
    for index, piece in enumerate(pieces):
        value = values[index] if index < len(values) else None
        style = f"on {colour(value, metric, scale)}"
        if index == selected:
            style = "bold reverse underline"
        text.append(visible(piece), style=style)
    return text


@dataclass(frozen=True)
class TokenDetail:
    """Every number of one token, for the detail line under the strip."""

    index: int
    token_id: int
    piece: str
    logprob: float | None
    ref_logprob: float | None
    value: float | None
    advantage: float | None
    ret: float | None

    @property
    def kl(self) -> float | None:
        if self.logprob is None or self.ref_logprob is None:
            return None
        return self.logprob - self.ref_logprob

    def describe(self) -> str:
        def fmt(value: float | None) -> str:
            return "—" if value is None else f"{value:+.4f}"

        prob = f" (p={math.exp(self.logprob):.3f})" if self.logprob is not None else ""
        return (
            f"token {self.index + 1}: id {self.token_id} {self.piece!r}  logprob {fmt(self.logprob)}{prob}  "
            f"ref {fmt(self.ref_logprob)}  kl {fmt(self.kl)}  value {fmt(self.value)}  "
            f"advantage {fmt(self.advantage)}  return {fmt(self.ret)}"
        )


def detail(tokens: TurnTokens, index: int, piece: str) -> TokenDetail:
    """The numbers of token ``index`` of a turn."""

    def at(values: list[float] | None) -> float | None:
        return values[index] if values is not None and index < len(values) else None

    return TokenDetail(
        index=index,
        token_id=tokens.token_ids[index],
        piece=piece,
        logprob=at(tokens.logprobs),
        ref_logprob=at(tokens.ref_logprobs),
        value=at(tokens.values),
        advantage=at(tokens.advantages),
        ret=at(tokens.returns),
    )
