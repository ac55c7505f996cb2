"""The ``qwen-workbench`` command line.

With no command it opens the Textual workbench on the runs folder (``runs/`` in the current folder,
or ``--runs-dir``); ``open RUN_DIR`` attaches it to one run, also one started headless. Light
commands (tools, tasks, play) run in this process. Commands that need PyTorch (bootstrap, eval,
train, serve) hand over to ``python -m trainer``, so this process, which also hosts the Textual
app, never imports the deep-learning stack.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from workbench.commands import play, tasks, tools

# Subcommands implemented by the trainer package; their arguments are parsed there.
TRAINER_COMMANDS = {
    "bootstrap": "train the embedded tiny model from scratch",
    "eval": "evaluate a model or checkpoint on held-out tasks",
    "train": "run PPO headless",
    "serve": "answer chat commands for a run whose trainer is not running",
    "rerun": "re-play a stored episode with another checkpoint and show the differences",
    "compare": "evaluate checkpoints side by side on the same held-out tasks",
    "flag": "flag an episode as a good example, a bad example or a bug",
    "promote": "turn flagged episodes into a regression task file",
    "export": "export episodes (JSONL or a datasets folder) and metrics (CSV, TensorBoard)",
    "report": "write a self-contained HTML report of a run",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwen-workbench", description="Train Qwen3 models to call MCP tools well, with PPO."
    )
    parser.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="the folder that holds the runs (default: ./runs)"
    )
    subparsers = parser.add_subparsers(dest="command")
    opener = subparsers.add_parser("open", help="open the workbench on one run (also one started headless)")
    opener.add_argument("run_dir", type=Path, help="the run folder, e.g. runs/run-20250101-120000")
    opener.set_defaults(run=run_open)
    tools.add_parser(subparsers)
    tasks.add_parser(subparsers)
    play.add_parser(subparsers)
    for name, help_text in TRAINER_COMMANDS.items():
        subparsers.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TRAINER_COMMANDS:
        return run_trainer_command(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return run_app(args.runs_dir)
    try:
        return args.run(args)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0


def run_app(runs_dir: Path, run_dir: Path | None = None) -> int:
    """Run the Textual workbench in this terminal until the user quits."""
    from workbench.app import WorkbenchApp

    WorkbenchApp(runs_dir=runs_dir, run_dir=run_dir).run()
    return 0


def run_open(args: argparse.Namespace) -> int:
    """``qwen-workbench open RUN_DIR``: the workbench on one run; a folder that is not a run is refused."""
    from trainer.store import DB_NAME

    run_dir: Path = args.run_dir
    if not (run_dir / DB_NAME).is_file():
        print(f"error: {run_dir} is not a run folder (no {DB_NAME}); see `qwen-workbench` for the runs list",
              file=sys.stderr)
        return 2
    return run_app(args.runs_dir if args.runs_dir != Path("runs") else run_dir.parent, run_dir)


def run_trainer_command(argv: list[str]) -> int:
    """Run ``python -m trainer ARGV`` in place of this process (or as a child where exec is unavailable)."""
    command = [sys.executable, "-m", "trainer", *argv]
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execv(sys.executable, command)
    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())
