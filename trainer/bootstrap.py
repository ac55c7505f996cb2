"""``qwen-workbench bootstrap``: build the embedded tiny Qwen3 from nothing, reproducibly.

The recipe: play the oracle solutions of train-split tasks through the real environment (so every
tool response is what the real servers answered), train a byte-level BPE tokenizer on those
conversations, then train a fresh ``Qwen3ForCausalLM`` by supervised learning on the assistant
turns only, laid out exactly as rollouts lay them out (``trainer.conversation``). A share of the
demonstrations first make a typical mistake and recover from the environment's real error message
(``trainer.demo_mistakes``); the mistakes are context, never targets. The same seed gives the same
files. The model is deliberately under-trained: it should write well-formed calls most of the time
but often get the arguments wrong, leaving PPO room to improve it.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mcp_servers.assets import asset_path
from trainer.bootstrap_recipe import BootstrapRecipe
from trainer.conversation import TokenStream, template_renderer, tool_call_text, turn_suffix
from trainer.demo_mistakes import mistaken_call_text
from trainer.env import MCPGymEnv
from trainer.generation import is_right_padded
from trainer.precision import cpu_bf16_matmuls, cpu_multiplies_bf16
from trainer.rollout import tool_texts
from trainer.tiny_model import build_model, save_pretrained_bundle, tiny_config_for, train_tokenizer

RECIPE_FILE = "recipe.json"


@dataclass
class Demonstration:
    """One oracle episode: the opening chat, its tools, and each turn's call text and tool responses.

    ``mistakes`` holds the indices of turns that are injected mistakes: context, never training targets.
    """

    messages: list[dict[str, str]]
    tools: list[dict[str, Any]]
    turns: list[tuple[str, list[str]]]
    mistakes: list[int] = field(default_factory=list)


def _play_reference(env: MCPGymEnv, seed: int, mistake_share: float) -> Demonstration:
    """Play one seeded task's reference calls, with one mistake first in ``mistake_share`` of them.

    The choices come from a generator seeded by the episode's seed, so a demonstration does not
    depend on which process plays it or what was played before.
    """
    rng = random.Random(seed)
    observation, info = env.reset(seed=seed)
    opening, calls = observation["messages"], info["task"].reference_calls
    mistake_at = rng.randrange(len(calls)) if calls and rng.random() < mistake_share else None
    demo = Demonstration(opening, observation["tools"], [])
    for index, call in enumerate(calls):
        if index == mistake_at:
            text = mistaken_call_text(call, info["tools"], rng)
            _, _, terminated, truncated, step = env.step(text)
            if terminated or truncated or step["status"] == "success":  # no mistake after all: play it clean
                return _play_reference(env, seed, 0.0)
            demo.mistakes.append(len(demo.turns))
            demo.turns.append((text, tool_texts(step)))
        text = tool_call_text(call.name, call.arguments)
        _, _, terminated, truncated, step = env.step(text)
        demo.turns.append((text, tool_texts(step)))
        if terminated or truncated:
            break
    return demo


def _play_references(suite: str, seeds: list[int], mistake_share: float = 0.0) -> list[Demonstration]:
    """Play each seeded task's reference calls in the environment and keep the conversation."""
    env = MCPGymEnv(suite=suite, split="train")
    try:
        return [_play_reference(env, seed, mistake_share) for seed in seeds]
    finally:
        env.close()


def collect_demonstrations(recipe: BootstrapRecipe, workers: int | None = None) -> list[Demonstration]:
    """The recipe's demonstrations, in seed order, played by ``workers`` processes (one per core).

    Each episode depends on its seed alone, so splitting the seeds into contiguous ranges and joining
    the results in order gives exactly what one process would.
    """
    seeds = list(recipe.demonstration_seeds())
    workers = workers or min(os.cpu_count() or 1, 4)
    if workers <= 1 or len(seeds) < 100:  # starting a process costs more than ~100 episodes take
        return _play_references(recipe.suite, seeds, recipe.mistake_share)
    bounds = [len(seeds) * k // workers for k in range(workers + 1)]
    ranges = [seeds[bounds[k] : bounds[k + 1]] for k in range(workers)]
    # spawn, not fork: the parent already runs the environment's event-loop thread
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = pool.map(_play_references, [recipe.suite] * workers, ranges, [recipe.mistake_share] * workers)
        return [demo for part in parts for demo in part]


def render_demonstration(tokenizer: Any, demo: Demonstration, *, short: bool = False) -> tuple[list[str], list[bool]]:
    """The demonstration as text pieces in stream order, each flagged as action (True) or observation.

    ``short`` drops the system turn and the tool list (the short form, see ``BootstrapRecipe``).
    """

    render = template_renderer(tokenizer, thinking=False)
    if short:
        opening = [m for m in demo.messages if m["role"] != "system"]
        pieces = [render(opening, None, add_generation_prompt=True)]
    else:
        pieces = [render(demo.messages, demo.tools, add_generation_prompt=True)]
    flags = [False]
    for index, (text, responses) in enumerate(demo.turns):
        pieces.append(text + "<|im_end|>")
        flags.append(index not in demo.mistakes)
        if index + 1 < len(demo.turns):
            pieces.append(turn_suffix(render, responses))
            flags.append(False)
    return pieces, flags


def encode_demonstration(tokenizer: Any, demo: Demonstration, *, short: bool = False) -> TokenStream:
    stream = TokenStream()
    for piece, is_action in zip(*render_demonstration(tokenizer, demo, short=short), strict=True):
        ids = tokenizer.encode(piece, add_special_tokens=False)
        stream.act(ids) if is_action else stream.observe(ids)
    return stream


def corpus_texts(demos: list[Demonstration], template_render) -> list[str]:
    """Plain text of every demonstration, for training the tokenizer."""
    texts = []
    for demo in demos:
        texts.append(template_render(demo.messages, demo.tools))
        for text, responses in demo.turns:
            texts.append(text)
            texts.extend(responses)
    return texts


def supervised_batches(streams: list[TokenStream], recipe: BootstrapRecipe, pad_id: int):
    """Yield (input_ids, attention_mask, labels) batches forever, in a seeded, length-bucketed order."""
    rng = random.Random(recipe.seed)
    order = list(range(len(streams)))
    while True:
        rng.shuffle(order)
        # Batches of similar length waste less compute on padding; their order is shuffled too.
        pool = recipe.batch_size * recipe.length_pool_batches
        chunks = [order[i : i + pool] for i in range(0, len(order), pool)]
        batches = []
        for chunk in chunks:
            chunk.sort(key=lambda i: len(streams[i]))
            batches.extend(chunk[i : i + recipe.batch_size] for i in range(0, len(chunk), recipe.batch_size))
        rng.shuffle(batches)
        for batch in batches:
            yield _collate([streams[i] for i in batch], pad_id)


def _collate(streams: list[TokenStream], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in streams)
    ids = torch.full((len(streams), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(streams), width), dtype=torch.long)
    labels = torch.full((len(streams), width), -100, dtype=torch.long)
    for row, stream in enumerate(streams):
        n = len(stream)
        ids[row, :n] = torch.tensor(stream.token_ids)
        mask[row, :n] = 1
        actions = torch.tensor(stream.action_mask, dtype=torch.bool)
        labels[row, :n] = torch.where(actions, ids[row, :n], torch.full_like(ids[row, :n], -100))
    return ids, mask, labels


def learning_rate(step: int, recipe: BootstrapRecipe) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return recipe.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def is_current(folder: Path, recipe: BootstrapRecipe) -> bool:
    """Whether ``folder`` already holds a model built from exactly this recipe."""
    try:
        return json.loads((folder / RECIPE_FILE).read_text()) == asdict(recipe)
    except (OSError, ValueError):
        return False


def bootstrap(recipe: BootstrapRecipe, folder: Path | None = None, *, force: bool = False,
              console=None) -> Path:
    """Build the tiny model into ``folder`` (the shipped assets by default)."""
    from rich.console import Console

    console = console or Console()
    folder = Path(folder) if folder is not None else asset_path("tiny-qwen3")
    if not force and is_current(folder, recipe):
        console.print(f"{folder} is already built from this recipe (use --force to rebuild)")
        return folder
    torch.manual_seed(recipe.seed)
    started = time.perf_counter()
    with console.status(f"playing {recipe.episodes} oracle episodes through the environment"):
        demos = collect_demonstrations(recipe)
    console.print(f"collected {len(demos)} demonstrations in {time.perf_counter() - started:.0f} s")

    from trainer.chat_format import render_chat

    texts = corpus_texts(demos, lambda m, t: render_chat(m, t, add_generation_prompt=True))
    tokenizer = train_tokenizer(texts, recipe.vocab_size, digit_group=recipe.digit_group)
    streams = [encode_demonstration(tokenizer, demo) for demo in demos]
    if recipe.short_form:
        streams += [encode_demonstration(tokenizer, demo, short=True) for demo in demos]
    streams = [s for s in streams if len(s) <= recipe.max_tokens]
    lengths = sorted(len(s) for s in streams)
    console.print(f"tokenizer: {len(tokenizer)} tokens; {len(streams)} demonstrations, "
                  f"median {lengths[len(lengths) // 2]} tokens, max {lengths[-1]}")
    bf16 = recipe.bf16_matmuls and cpu_multiplies_bf16()
    console.print("matrix products in bf16" if bf16 else "matrix products in float32")

    model = build_model(tiny_config_for(tokenizer, hidden=recipe.hidden, layers=recipe.layers, heads=recipe.heads,
                                        kv_heads=recipe.kv_heads, intermediate=recipe.intermediate), recipe.seed)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay,
                                  betas=(0.9, 0.98))
    batches = supervised_batches(streams, recipe, tokenizer.pad_token_id)
    progress = Progress(TextColumn("[bold]bootstrap"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                        TextColumn("loss {task.fields[loss]:.3f}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console)
    smoothed = float("nan")
    with progress:
        task = progress.add_task("train", total=recipe.steps, loss=smoothed)
        for step in range(recipe.steps):
            ids, mask, labels = next(batches)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, recipe)
            with cpu_bf16_matmuls(recipe.bf16_matmuls):  # _collate pads on the right: no mask needed
                loss = model(input_ids=ids, attention_mask=None if is_right_padded(mask) else mask,
                             labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            value = loss.item()
            smoothed = value if math.isnan(smoothed) else 0.95 * smoothed + 0.05 * value
            progress.update(task, advance=1, loss=smoothed)
            if not console.is_terminal and (step + 1) % 50 == 0:  # a log file gets plain progress lines
                console.print(f"step {step + 1}/{recipe.steps}  loss {smoothed:.3f}  "
                              f"{time.perf_counter() - started:.0f} s")
    model.eval()
    model.to(torch.bfloat16)  # halves the shipped files; the loader runs it in float32 on the CPU
    save_pretrained_bundle(model, tokenizer, folder)
    (folder / RECIPE_FILE).write_text(json.dumps(asdict(recipe), indent=2) + "\n")
    console.print(f"saved to {folder} in {time.perf_counter() - started:.0f} s (final loss {smoothed:.3f})")
    return folder
