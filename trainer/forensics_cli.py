"""CLI parsers for episode forensics and curation (rerun, compare, flag, promote, export, report).

``qwen-workbench CMD ...`` hands these to ``python -m trainer CMD ...``. Only ``rerun`` and
``compare`` load a model; the others import nothing heavy. Every command takes a run folder or a
run name under ``runs/``, prints one-line errors, and exits 0 (ok), 2 (bad usage or input) or 3 (a
model or server could not be loaded). ``--json`` prints machine-readable output (the UI uses it).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE, EXIT_UNREACHABLE = 0, 2, 3


def _error(message: Any, code: int = EXIT_USAGE) -> int:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, default=str))


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the errors a user can cause into one-line messages and exit codes, never tracebacks."""

    def wrapper(args: argparse.Namespace) -> int:
        from mcp_servers.config import ConfigError
        from mcp_servers.hub import HubError
        from mcp_servers.tasks.model import TaskFormatError
        from trainer.curation import CurationError
        from trainer.export import ExportError
        from trainer.store import StoreError

        try:
            return run(args)
        except (StoreError, CurationError, ExportError, TaskFormatError, ConfigError) as exc:
            return _error(exc, EXIT_USAGE)
        except HubError as exc:
            return _error(exc, EXIT_UNREACHABLE)
        except Exception as exc:  # ModelLoadError lives with torch; import it only when it happened
            if type(exc).__name__ == "ModelLoadError":
                return _error(exc, EXIT_UNREACHABLE)
            raise

    return wrapper


def _run_dir(text: str) -> Path:
    from trainer.curation import resolve_run

    return resolve_run(text)


def add_forensics_parsers(commands: argparse._SubParsersAction) -> None:
    """Register the forensics subcommands."""
    from trainer.store import FLAG_KINDS

    rerun = commands.add_parser("rerun", help="re-play a stored episode with another checkpoint and diff the two")
    rerun.add_argument("run_name", metavar="RUN", help="run folder, or a run name under runs/")
    rerun.add_argument("episode", type=int, help="episode id")
    rerun.add_argument("--adapter", "--checkpoint", dest="adapter",
                       help="base, best, latest, an iteration, a checkpoint name or folder "
                            "(default: the checkpoint that played the episode)")
    rerun.add_argument("--device", help="cpu, cuda or auto (default: the run's)")
    rerun.add_argument("--json", action="store_true", help="print the diff and both episodes as JSON")
    rerun.set_defaults(run=_guarded(run_rerun))

    compare = commands.add_parser("compare", help="evaluate checkpoints side by side on the same held-out tasks")
    compare.add_argument("run_name", metavar="RUN", help="run folder, or a run name under runs/")
    compare.add_argument("checkpoints", nargs="+", metavar="CKPT",
                         help="base, best, latest, an iteration, a checkpoint name or folder (one alone: vs base)")
    compare.add_argument("-n", "--episodes", type=int, help="held-out tasks (default: the run's eval.num_tasks)")
    compare.add_argument("--seed", type=int, help="first task seed (default: the run's eval.seed)")
    compare.add_argument("--batch-size", type=int, help="episodes played at once (default: the run's)")
    compare.add_argument("--device", help="cpu, cuda or auto (default: the run's)")
    compare.add_argument("--no-store", action="store_true", help="do not store the episodes in the run")
    compare.add_argument("--json", action="store_true")
    compare.set_defaults(run=_guarded(run_compare))

    flag = commands.add_parser("flag", help="flag an episode as a good example, a bad example or a bug")
    flag.add_argument("run_name", metavar="RUN", help="run folder, or a run name under runs/")
    flag.add_argument("episode", type=int, nargs="?", help="episode id (omit to list the run's flags)")
    flag.add_argument("--kind", choices=FLAG_KINDS)
    flag.add_argument("--note", help="why (kept with the flag)")
    flag.add_argument("--remove", action="store_true", help="remove the flag of --kind (every flag without it)")
    flag.add_argument("--json", action="store_true")
    flag.set_defaults(run=_guarded(run_flag))

    promote = commands.add_parser("promote", help="turn flagged episodes into a regression task file")
    promote.add_argument("run_name", metavar="RUN", help="run folder, or a run name under runs/")
    promote.add_argument("--kind", choices=[*FLAG_KINDS, "any"], default="any", help="which flags (default any)")
    promote.add_argument("--out", type=Path, help="task file to write (default runs/<run>/regression.jsonl)")
    promote.add_argument("--json", action="store_true")
    promote.set_defaults(run=_guarded(run_promote))

    export = commands.add_parser("export", help="export episodes (JSONL, datasets) or metrics (CSV, TensorBoard)")
    export.add_argument("run_name", metavar="RUN", help="run folder, or a run name under runs/")
    export.add_argument("out", type=Path, help="file (jsonl, csv) or folder (hf, tensorboard) to write")
    what = export.add_mutually_exclusive_group(required=True)
    what.add_argument("--format", choices=["jsonl", "hf"], help="episodes as chat examples with tool calls")
    what.add_argument("--metrics", choices=["csv", "tensorboard"], help="per-iteration metrics")
    export.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                        help="episode filter, repeatable: iteration, min_iteration, max_iteration, phase, status, "
                             "any_status, suite, split, task_id, success, min_reward, max_reward, search, flagged")
    export.add_argument("--limit", type=int, help="at most this many episodes (oldest first)")
    export.add_argument("--json", action="store_true")
    export.set_defaults(run=_guarded(run_export))

    report = commands.add_parser("report", help="write a self-contained HTML report of a run")
    report.add_argument("run_name", metavar="RUN", help="run folder, or a run name under runs/")
    report.add_argument("out", type=Path, help="the HTML file to write")
    report.add_argument("--episodes", type=int, default=5, help="best and worst episodes shown (default 5)")
    report.set_defaults(run=_guarded(run_report))


# --------------------------------------------------------------------------------------------
# Commands


def run_rerun(args: argparse.Namespace) -> int:
    from trainer.forensics import rerun

    result = rerun(_run_dir(args.run_name), args.episode, args.adapter, device=args.device)
    if args.json:
        _print_json(result.to_dict())
        return EXIT_OK
    verdict = "identical" if result.diff.identical else f"differs from turn {result.diff.first_difference}"
    if not result.diff.identical and result.diff.first_difference is None:
        verdict = "same turns, different outcome"
    print(f"episode {args.episode} ({result.phase}) re-run with {result.policy.label}, greedy: {verdict}")
    if result.phase not in ("eval", "compare"):
        print(f"(a {result.phase} episode was sampled, not greedy: expect differences even with the same weights)")
    print("\n".join(result.diff.lines()))
    return EXIT_OK


def _compare_text(result: Any) -> list[str]:
    data = result.to_dict()
    labels = data["labels"]
    width = max(12, *(len(label) + 2 for label in labels))
    lines = [f"comparison {data['id'] if data['id'] is not None else '(not stored)'}: {data['n']} tasks of "
             f"{data['suite']}/{data['split']}, seeds {data['seed']}..{data['seed'] + data['n'] - 1}, greedy",
             " " * 18 + "".join(f"{label:>{width}}" for label in labels)]

    def row(name: str, values: list[str]) -> None:
        lines.append(f"{name:<18}" + "".join(f"{value:>{width}}" for value in values))

    policies = data["policies"]
    row("success", [f"{policies[label]['success_rate']:.1%}" for label in labels])
    row("mean return", [f"{policies[label]['mean_return']:+.2f}" for label in labels])
    for status in policies[labels[0]]["status_shares"]:
        row(f"  {status}", [f"{policies[label]['status_shares'][status]:.0%}" for label in labels])
    lines.append(f"{len(data['disagreements'])} task(s) where they disagree:")
    for item in data["disagreements"]:
        lines.append(f"  {item['task_id']}: {item['instruction']}")
        for label, outcome in item["outcomes"].items():
            where = f"  episode {outcome['episode_id']}" if outcome["episode_id"] is not None else ""
            lines.append(f"    {label:<{width}} {outcome['outcome']} ({outcome['final_status']}, "
                         f"{outcome['total_reward']:+g}){where}")
    return lines


def run_compare(args: argparse.Namespace) -> int:
    from trainer.forensics import compare

    if args.episodes is not None and args.episodes < 1:
        return _error("-n must be at least 1")
    if args.batch_size is not None and args.batch_size < 1:
        return _error("--batch-size must be at least 1")

    def progress(label: str, done: int, total: int) -> None:
        if not args.json:
            print(f"  {label}: {done}/{total} episodes", file=sys.stderr, flush=True)

    result = compare(_run_dir(args.run_name), args.checkpoints, n=args.episodes, seed=args.seed,
                     batch_size=args.batch_size, device=args.device, store=not args.no_store, progress=progress)
    if args.json:
        _print_json(result.to_dict())
    else:
        print("\n".join(_compare_text(result)))
    return EXIT_OK


def run_flag(args: argparse.Namespace) -> int:
    from trainer.curation import flag_episode, unflag_episode
    from trainer.store import RunReader

    run_dir = _run_dir(args.run_name)
    if args.episode is None:
        if args.remove or args.kind or args.note:
            return _error("name the EPISODE to flag or unflag")
        with RunReader(run_dir) as reader:
            flags = reader.flags()
        if args.json:
            _print_json([asdict(flag) for flag in flags])
        else:
            for flag in flags:
                print(f"episode {flag.episode_id}  {flag.kind}" + (f"  {flag.note}" if flag.note else ""))
            if not flags:
                print(f"run {run_dir.name} has no flagged episodes")
        return EXIT_OK
    if args.remove:
        removed = unflag_episode(run_dir, args.episode, args.kind)
        if args.json:
            _print_json({"removed": removed})
        else:
            print(f"removed {removed} flag(s) of episode {args.episode}")
        return EXIT_OK
    if args.kind is None:
        return _error("--kind good|bad|bug is required to flag an episode")
    flag = flag_episode(run_dir, args.episode, args.kind, args.note)
    if args.json:
        _print_json(asdict(flag))
    else:
        print(f"flagged episode {flag.episode_id} as {flag.kind}")
    return EXIT_OK


def run_promote(args: argparse.Namespace) -> int:
    from trainer.curation import promote

    result = promote(_run_dir(args.run_name), args.kind, args.out)
    if args.json:
        _print_json(result.to_dict())
        return EXIT_OK
    print(f"wrote {len(result.task_ids)} task(s) from {len(result.episode_ids)} flagged episode(s) to {result.path}")
    for line in result.skipped:
        print(f"  skipped {line}")
    return EXIT_OK


def run_export(args: argparse.Namespace) -> int:
    from trainer.curation import parse_filter
    from trainer.export import export_episodes, export_metrics

    run_dir = _run_dir(args.run_name)
    if args.metrics:
        if args.filter or args.limit is not None:
            return _error("--filter and --limit apply to episodes, not to --metrics")
        result = export_metrics(run_dir, args.out, format=args.metrics)
        what = "iteration(s) of metrics"
    else:
        if args.limit is not None and args.limit < 1:
            return _error("--limit must be at least 1")
        result = export_episodes(run_dir, args.out, format=args.format, filters=parse_filter(args.filter),
                                 limit=args.limit)
        what = "episode(s)"
    if args.json:
        _print_json(result.to_dict())
    else:
        print(f"exported {result.count} {what} to {result.path}")
    return EXIT_OK


def run_report(args: argparse.Namespace) -> int:
    from trainer.report import write_report

    if args.episodes < 0:
        return _error("--episodes must be 0 or more")
    path = write_report(_run_dir(args.run_name), args.out, args.episodes)
    print(f"wrote {path}")
    return EXIT_OK
