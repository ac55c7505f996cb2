"""Command-line entry points of the trainer process: bootstrap, eval, train."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields, replace
from pathlib import Path

from trainer.bootstrap_recipe import BootstrapRecipe
from trainer.config import bool_from_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def _error(message: str, code: int) -> int:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _flag_bool(text: str) -> bool:
    """A boolean flag read as ``--set`` reads booleans (``bool("false")`` would be True)."""
    try:
        return bool_from_text(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qwen-workbench")
    commands = parser.add_subparsers(dest="command", required=True)

    boot = commands.add_parser("bootstrap", help="train the embedded tiny model from scratch")
    boot.add_argument("--out", type=Path, help="folder to write (default: the shipped assets/tiny-qwen3)")
    boot.add_argument("--force", action="store_true", help="rebuild even if the recipe is unchanged")
    for field in fields(BootstrapRecipe):
        if field.name != "version":
            kind = _flag_bool if isinstance(field.default, bool) else type(field.default)
            boot.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=None,
                              help=f"recipe {field.name} (default {field.default})")
    boot.set_defaults(run=run_bootstrap)

    from trainer.evaluation import add_eval_parser

    add_eval_parser(commands)

    train = commands.add_parser("train", help="run PPO headless")
    train.add_argument("--config", type=Path, help="a TOML config file")
    train.add_argument("--preset", help="tiny-cpu (default) or qwen3-4b-gpu")
    train.add_argument("--run-dir", type=Path, help="the run folder (default: runs/<name or timestamp>)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its newest checkpoint")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting, e.g. --set ppo.clip_eps=0.1 (repeatable)")
    train.add_argument("--show-config", action="store_true", help="print every setting with its meaning and exit")
    train.set_defaults(run=run_train)

    serve = commands.add_parser("serve", help="answer chat commands for a run with no trainer running")
    serve.add_argument("--run-dir", type=Path, required=True)
    serve.add_argument("--checkpoint", help="checkpoint folder (default: the best, else the newest)")
    serve.add_argument("--idle-exit", type=float, default=1800.0, help="exit after this many idle seconds")
    serve.set_defaults(run=run_serve)

    from trainer.forensics_cli import add_forensics_parsers

    add_forensics_parsers(commands)
    return parser


def run_bootstrap(args: argparse.Namespace) -> int:
    from trainer.bootstrap import bootstrap

    overrides = {f.name: getattr(args, f.name) for f in fields(BootstrapRecipe)
                 if f.name != "version" and getattr(args, f.name) is not None}
    recipe = replace(BootstrapRecipe(), **overrides)
    bootstrap(recipe, args.out, force=args.force)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return _error("interrupted", 130)


def run_train(args: argparse.Namespace) -> int:
    import json
    import time

    from trainer.config import Config, ConfigError, describe, load_config
    from trainer.model_loading import ModelLoadError
    from trainer.store import CONFIG_NAME, StoreError

    if args.show_config:
        print(describe())
        return EXIT_OK
    try:
        if args.resume:
            if args.run_dir is None:
                return _error("--resume needs --run-dir", EXIT_USAGE)
            saved = args.run_dir / CONFIG_NAME
            if not saved.is_file():
                return _error(f"{args.run_dir} is not a run folder (no {CONFIG_NAME})", EXIT_USAGE)
            config = Config.from_dict(json.loads(saved.read_text())).with_overrides(args.set).validate()
        else:
            config = load_config(args.config, preset_name=args.preset, overrides=args.set)
    except ConfigError as exc:
        return _error(str(exc), EXIT_USAGE)
    run_dir = args.run_dir or Path(config.run.runs_dir) / (config.run.name or time.strftime("run-%Y%m%d-%H%M%S"))
    if not args.resume and (run_dir / CONFIG_NAME).exists():
        return _error(f"{run_dir} already holds a run; use --resume or another --run-dir", EXIT_USAGE)
    from trainer.train import train

    print(f"run folder: {run_dir}", flush=True)
    try:
        train(config, run_dir, resume=args.resume, echo=lambda line: print(line, flush=True))
    except ModelLoadError as exc:
        return _error(str(exc), EXIT_UNREACHABLE)
    except StoreError as exc:
        return _error(str(exc), EXIT_USAGE)
    return EXIT_OK


def run_serve(args: argparse.Namespace) -> int:
    from trainer.model_loading import ModelLoadError
    from trainer.serve import serve
    from trainer.store import StoreError

    try:
        serve(args.run_dir, args.checkpoint, args.idle_exit, echo=lambda line: print(line, flush=True))
    except StoreError as exc:
        return _error(str(exc), EXIT_USAGE)
    except ModelLoadError as exc:
        return _error(str(exc), EXIT_UNREACHABLE)
    return EXIT_OK
