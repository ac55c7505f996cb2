"""`qwen-workbench play`: be the policy. Type assistant turns and see what the environment makes of them."""

from __future__ import annotations

import argparse
import json
import sys

from rich.console import Console
from rich.markup import escape

from mcp_servers.config import ConfigError
from mcp_servers.hub import HubError
from mcp_servers.tasks.model import TaskFormatError
from mcp_servers.tasks.suites import SPLITS, UnknownSuiteError, suite_names
from trainer.chat_format import render_chat
from trainer.env import MCPGymEnv
from workbench.commands.exits import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, fail
from workbench.styles import STATUS_STYLE

HELP = "Type an assistant turn (end a line with \\ to continue it). Commands: :ref  :new  :quit"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    play = subparsers.add_parser("play", help="play the policy by hand against the tools")
    play.add_argument("--suite", default="all", help=f"one of {', '.join(suite_names())}")
    play.add_argument("--split", choices=SPLITS, default="train")
    play.add_argument("--seed", type=int, default=0, help="the first episode's seed (then +1 per episode)")
    play.add_argument("--task-file", help="play tasks from a JSONL task file instead of a suite")
    play.add_argument("--servers-config", help="an mcpServers JSON file adding external servers")
    play.add_argument("--thinking", action="store_true", help="render the prompt with thinking enabled")
    play.set_defaults(run=run_play)


def run_play(args: argparse.Namespace, stdin=None) -> int:
    console = Console(highlight=False)
    stdin = stdin or sys.stdin
    try:
        env = MCPGymEnv(suite=args.suite, split=args.split, task_file=args.task_file,
                        servers_config=args.servers_config)
    except (TaskFormatError, ConfigError, UnknownSuiteError) as exc:
        return fail(str(exc), EXIT_USAGE)
    seed = args.seed
    try:
        while True:
            try:
                observation, info = env.reset(seed=seed)
            except (HubError, ConfigError, UnknownSuiteError) as exc:
                return fail(str(exc), EXIT_UNREACHABLE if isinstance(exc, HubError) else EXIT_USAGE)
            task = info["task"]
            console.rule(f"[bold]{task.id}[/] seed {seed}")
            console.print(escape(render_chat(observation["messages"], observation["tools"],
                                             add_generation_prompt=True, enable_thinking=args.thinking)))
            console.print(f"[dim]{HELP}[/]")
            outcome = _play_episode(env, console, stdin)
            if outcome == "quit":
                return EXIT_OK
            seed += 1
    finally:
        env.close()


def _play_episode(env: MCPGymEnv, console: Console, stdin) -> str:
    while True:
        text = _read_turn(console, stdin)
        if text is None or text.strip() == ":quit":
            return "quit"
        if text.strip() == ":new":
            return "new"
        if text.strip() == ":ref":
            for call in env.task.reference_calls:
                console.print(f"<tool_call>{escape(json.dumps(call.to_dict()))}</tool_call>")
            continue
        _, reward, terminated, truncated, info = env.step(text)
        _show_turn(console, info, reward)
        if terminated or truncated:
            episode = info["episode"]
            console.print(f"[bold]episode {episode['outcome']}[/], return {episode['total_reward']:+g}")
            return "done"


def _read_turn(console: Console, stdin) -> str | None:
    lines: list[str] = []
    console.print("[bold cyan]assistant>[/] ", end="")
    while True:
        line = stdin.readline()
        if not line:
            return None
        line = line.rstrip("\n")
        if line.endswith("\\"):
            lines.append(line[:-1])
            continue
        lines.append(line)
        return "\n".join(lines)


def _show_turn(console: Console, info: dict, reward: float) -> None:
    if info["parse_error"]:
        console.print(f"  parse: [red]{escape(info['parse_error'])}[/]")
    for call in info["calls"]:
        console.print(f"  call: {escape(call['name'])} {escape(json.dumps(call['arguments'], ensure_ascii=False))}")
        style = "red" if call["is_error"] else "green"
        console.print(f"  mcp ({call['latency_s'] * 1000:.0f} ms): [{style}]{escape(call['response'][:600])}[/]")
    if not info["calls"]:
        console.print(f"  feedback: {escape(info['feedback'][:600])}")
    style = STATUS_STYLE.get(info["status"], "")
    console.print(f"  status: [{style}]{info['status']}[/]  reward {reward:+g}")
