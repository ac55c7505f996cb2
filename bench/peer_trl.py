"""Peer benchmark: our PPO against trl's GRPOTrainer on the same tasks, model, machine and budget (JSON).

    python bench/peer_trl.py [--minutes 15] [--eval-tasks 32] [--checkpoints 5] [--out out/peer_trl]
                             [--set KEY=VALUE ...] [--trl-set GRPOCONFIG_FIELD=VALUE ...] [--trl-full]
                             [--trl-schemas python|exact] [--sides ours,trl] [--threads N]

Each side runs in its own child process, one after the other (so peak RSS, threads and seeds are its
own): load the model, evaluate it on the held-out tasks, train for ``--minutes`` of wall-clock time,
evaluating again every ``minutes / checkpoints`` (evaluation time is excluded from the budget), and
report held-out success before and after, each status's share of the turns, training and evaluation
wall time, generated tokens, episodes and peak RSS. The parent prints one JSON object on stdout and
draws held-out success against training time into ``--out/success_vs_time.png``.

Shared by both sides: the model (``model.name``, default the shipped tiny model), the task suite and
splits, the bundled MCP servers (in-process), the reward matrix, the per-turn token cap, the
sampling temperature, the LoRA shape and the held-out evaluation (``trainer.evaluation.evaluate``:
the same tasks and seeds, greedy, through our environment and our prompts). ``--set`` changes our
config for both sides; ``--trl-set`` overrides one ``GRPOConfig`` field for trl's side only (values
are read as JSON when they parse, else as text). trl's side trains on the very task stream our PPO
trainer draws (the same seeds in the same order), through ``bench/peer_trl_bridge.py``; its chosen
``GRPOConfig`` values and why are in ``trl_defaults``.

In ``--out``: ``ours.json`` and ``trl.json`` (each side's result), ``success_vs_time.png``, our run
folder ``ours-run/`` and trl's trained adapter ``trl-adapter/`` (``qwen-workbench eval --adapter``
loads it). ``--threads`` sets torch's threads in each side: on a machine whose cores other processes
also use, ``--threads 1`` is often much faster than fighting over two.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # our helpers, and the repository when run from a checkout

SIDES = ("ours", "trl")
FULL_LR = 1e-4  # trl's side with --trl-full (every weight of the tiny model trains)
# trl's own per-step metrics worth averaging over the run (frac_reward_zero_std: groups with no signal)
TRL_LOG_KEYS = ("reward", "reward_std", "frac_reward_zero_std", "tools/call_frequency", "tools/failure_frequency",
                "completions/mean_length", "completions/clipped_ratio", "entropy", "clip_ratio/region_mean")
CHILD_ENV = {"TRL_EXPERIMENTAL_SILENCE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
             "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "WANDB_DISABLED": "true"}


# --------------------------------------------------------------------------------------------------
# The clock and the held-out evaluation, identical for both sides
# --------------------------------------------------------------------------------------------------


class BudgetClock:
    """Training seconds against the budget; evaluations run inside ``excluded()`` do not count."""

    def __init__(self, budget_s: float, checkpoints: int) -> None:
        self.budget_s = budget_s
        self.marks = [budget_s * k / checkpoints for k in range(1, checkpoints + 1)]
        self.started: float | None = None  # training has not begun: train_s stays 0
        self.excluded_s = 0.0

    def start(self) -> None:
        self.started, self.excluded_s = time.perf_counter(), 0.0

    @property
    def train_s(self) -> float:
        if self.started is None:
            return 0.0
        return time.perf_counter() - self.started - self.excluded_s

    def checkpoint_due(self) -> bool:
        return bool(self.marks) and self.train_s >= self.marks[0]

    def spent(self) -> bool:
        return self.train_s >= self.budget_s

    @contextlib.contextmanager
    def excluded(self) -> Iterator[None]:
        tick = time.perf_counter()
        try:
            yield
        finally:
            self.excluded_s += time.perf_counter() - tick
            self.marks = [mark for mark in self.marks if mark > self.train_s]


@dataclasses.dataclass
class Progress:
    """What one side has done so far, for the points of its success-over-time curve."""

    steps: int = 0
    episodes: int = 0
    train_tokens: int = 0
    eval_tokens: int = 0
    eval_s: float = 0.0
    curve: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    train_records: list[Any] = dataclasses.field(default_factory=list)  # since the last checkpoint


def summary(report: Any) -> dict[str, Any]:
    return {"success_rate": report.success_rate, "status_shares": report.status_shares,
            "mean_return": round(report.mean_return, 3), "turns_per_episode": round(report.turns_per_episode, 3),
            "episodes": report.episodes}


def heldout(policy: Any, config: Any, episodes: int) -> tuple[Any, int]:
    """Held-out success of ``policy``: the same tasks, seeds and greedy settings for every caller."""
    from trainer.evaluation import evaluate
    from trainer.rollout import SamplingSettings

    settings = SamplingSettings(max_new_tokens=config.rollout.max_new_tokens, greedy=True,
                                max_context_tokens=config.rollout.max_episode_tokens)
    report, rollouts = evaluate(policy, suite=config.task.suite, split=config.task.eval_split, episodes=episodes,
                                batch_size=config.rollout.batch_size, settings=settings, seed=config.eval.seed,
                                task_file=config.task.task_file)
    return report, sum(r.generated_tokens for r in rollouts)


def checkpoint(policy: Any, config: Any, args: argparse.Namespace, clock: BudgetClock, progress: Progress,
               label: str) -> dict[str, Any]:
    """Evaluate (outside the budget) and add one point to the curve."""
    tick = time.perf_counter()
    with clock.excluded():
        report, tokens = heldout(policy, config, args.eval_tasks)
    progress.eval_s += time.perf_counter() - tick
    progress.eval_tokens += tokens
    records, progress.train_records = progress.train_records, []
    point = {"label": label, "train_s": round(max(0.0, clock.train_s), 2), "steps": progress.steps,
             "episodes": progress.episodes, "generated_tokens": progress.train_tokens,
             "heldout_success": report.success_rate, "heldout_mean_return": round(report.mean_return, 3),
             "train_success_since_last": (round(sum(r.outcome == "success" for r in records) / len(records), 4)
                                          if records else None)}
    progress.curve.append(point)
    print(f"[{args.side}] {label}: t={point['train_s']:.0f}s steps={progress.steps} "
          f"heldout success {report.success_rate:.1%}", file=sys.stderr, flush=True)
    return summary(report)


def train_shares(records: Sequence[Any]) -> dict[str, Any]:
    """Training episodes' success share and each status's share of their turns."""
    turns = Counter(turn.status for record in records for turn in record.turns)
    total = max(1, sum(turns.values()))
    return {"episodes": len(records),
            "success_rate": round(sum(r.outcome == "success" for r in records) / max(1, len(records)), 4),
            "status_shares": {status: round(count / total, 4) for status, count in sorted(turns.items())}}


def side_result(progress: Progress, clock: BudgetClock, before: dict, after: dict, started: float,
                **extra: Any) -> dict[str, Any]:
    return {"before": before, "after": after, "trained_s": round(clock.train_s, 1),
            "eval_s": round(progress.eval_s, 1), "wall_s": round(time.perf_counter() - started, 1),
            "steps": progress.steps, "episodes": progress.episodes,
            "generated_tokens": {"train": progress.train_tokens, "eval": progress.eval_tokens},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "curve": progress.curve, **extra}


# --------------------------------------------------------------------------------------------------
# Our side
# --------------------------------------------------------------------------------------------------


def run_ours(config: Any, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Our PPO trainer (``tiny-cpu`` preset plus ``--set``), whole iterations until the budget is spent."""
    from trainer.train import Trainer

    started = time.perf_counter()
    trainer = Trainer(config, out / "ours-run", echo=lambda line: print(f"[ours] {line}", file=sys.stderr, flush=True))
    clock, progress = BudgetClock(args.minutes * 60, args.checkpoints), Progress()
    all_records: list[Any] = []
    try:
        before = checkpoint(trainer.policy, config, args, clock, progress, "before")
        clock.start()
        while True:
            metrics = trainer.train_iteration()
            trainer.iteration += 1
            progress.steps += 1
            progress.episodes += config.rollout.batch_size
            progress.train_tokens += int(metrics["generated_tokens"])
            records = _last_records(trainer)
            progress.train_records.extend(records)
            all_records.extend(records)
            if clock.spent():
                after = checkpoint(trainer.policy, config, args, clock, progress, "after")
                break
            if clock.checkpoint_due():
                checkpoint(trainer.policy, config, args, clock, progress, f"checkpoint {len(progress.curve)}")
    finally:
        trainer.store.set_state("finished")
        trainer.close()
    return side_result(progress, clock, before, after, started, train=train_shares(all_records),
                       settings={"preset": "tiny-cpu", "overrides": args.set, "iteration_episodes":
                                 config.rollout.batch_size, "ppo_epochs": config.ppo.epochs,
                                 "minibatch": config.ppo.minibatch_size, "lr": config.optim.lr,
                                 "kl_coef": config.ppo.kl_coef, "lora": dataclasses.asdict(config.lora)
                                 if config.lora.enabled else None})


def _last_records(trainer: Any) -> list[Any]:
    """The episode records of the iteration just played (the trainer's environments keep them)."""
    return [env.record for env in trainer.envs if env.record is not None]


# --------------------------------------------------------------------------------------------------
# trl's side
# --------------------------------------------------------------------------------------------------


def trl_defaults(config: Any, max_turns: int, *, full: bool = False) -> dict[str, Any]:
    """Our choice of GRPOConfig values; each departs from trl's default for the reason given."""
    per_device = config.ppo.minibatch_size
    return {
        "use_cpu": True, "bf16": False,  # float32 on the CPU, as our tiny-cpu preset (trl defaults to bf16)
        "gradient_checkpointing": False,  # a tiny model: recomputing activations only costs time
        # LoRA on a tiny model: our lr; a full fine-tune of it: FULL_LR (trl's 1e-6 suits billions of weights)
        "learning_rate": FULL_LR if full else config.optim.lr,
        "lr_scheduler_type": "constant", "warmup_steps": 0,  # a wall-clock budget has no known end step
        "optim": "adamw_torch", "adam_beta1": config.optim.adam_beta1, "adam_beta2": config.optim.adam_beta2,
        "adam_epsilon": config.optim.adam_eps, "weight_decay": config.optim.weight_decay,
        "max_grad_norm": config.optim.max_grad_norm,
        # 16 rollouts per generation in optimizer steps of 8, like one of our PPO iterations
        "per_device_train_batch_size": per_device,
        "steps_per_generation": max(1, config.rollout.batch_size // per_device),
        "num_generations": 8, "num_iterations": 1, "beta": 0.0, "epsilon": config.ppo.clip_eps,  # trl defaults
        "temperature": config.rollout.temperature, "top_p": config.rollout.top_p,
        # our per-turn cap; the whole multi-turn completion (tool responses included) is capped below
        "generation_kwargs": {"max_new_tokens": config.rollout.max_new_tokens},
        "max_completion_length": 512,  # trl's default: oracle episodes need about 100
        "max_tool_calling_iterations": max_turns,  # the longest task's turn limit (the env ends each task's)
        "chat_template_kwargs": {"enable_thinking": config.model.thinking},  # as our rollouts render
        "shuffle_dataset": False,  # the rows are our trainer's task stream, in its order
        "seed": config.run.seed, "logging_steps": 1, "disable_tqdm": True, "save_strategy": "no",
        "report_to": "none", "dataloader_num_workers": 0, "max_steps": 1_000_000,
    }


def parse_value(text: str) -> Any:
    """A ``--trl-set`` value: JSON when it parses (numbers, booleans, objects), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def trl_overrides(items: Sequence[str]) -> dict[str, Any]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"error: --trl-set {item!r} must look like field=value, e.g. num_generations=4")
        overrides[key.strip()] = parse_value(value.strip())
    return overrides


def rows_needed(args: argparse.Namespace, grpo: dict[str, Any]) -> int:
    """Dataset rows enough for the budget: at most one generation per second of training."""
    per_generation = grpo["per_device_train_batch_size"] * grpo["steps_per_generation"] // grpo["num_generations"]
    return max(64, int(args.minutes * 60 + 8) * max(1, per_generation))


def run_trl(config: Any, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """trl's GRPOTrainer on the same model, tasks and servers, stopped by a callback at the budget."""
    import peer_trl_bridge as bridge_mod
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer
    from trl.chat_template_utils import qwen3_chat_template

    from trainer.model_loading import load_policy

    started = time.perf_counter()
    policy = load_policy(config.model.name, device="cpu", lora=None, thinking=config.model.thinking)
    tokenizer = copy.deepcopy(policy.tokenizer)
    # trl recognises a chat template by its text; ours renders byte for byte what Qwen3's does (checked
    # below on our prompts), so trl's side gets trl's own copy of it.
    tokenizer.chat_template = qwen3_chat_template
    overrides = trl_overrides(args.trl_set)
    unknown = set(overrides) - {f.name for f in dataclasses.fields(GRPOConfig)}
    if unknown:
        raise SystemExit(f"error: --trl-set names no GRPOConfig field: {', '.join(sorted(unknown))}")
    seeds = task_seeds(config, rows_needed(args, {**trl_defaults(config, 1, full=args.trl_full), **overrides}))
    tasks = bridge_mod.training_tasks(config.task.suite, config.task.train_split, seeds, config.task.task_file)
    max_turns = config.task.max_turns or max(task.max_turns for task in tasks)
    grpo = {**trl_defaults(config, max_turns, full=args.trl_full), **overrides}
    settings = bridge_mod.EnvSettings(rewards=config.rewards.as_reward_config(), max_turns=config.task.max_turns,
                                      max_structural_failures=config.task.max_structural_failures,
                                      call_timeout_s=config.task.call_timeout_s)
    bridge = bridge_mod.build_bridge(tasks, settings)
    if args.trl_schemas == "exact":
        bridge_mod.use_exact_schemas()
    peft_config = None
    if not args.trl_full:
        from peft import LoraConfig

        lora = config.lora
        peft_config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                 target_modules=lora.target_modules if lora.target_modules == "all-linear"
                                 else lora.target_modules.split(","), task_type="CAUSAL_LM")
    clock, progress = BudgetClock(args.minutes * 60, args.checkpoints), Progress()
    state: dict[str, Any] = {}

    class Budget(TrainerCallback):
        """Counts generated tokens, evaluates at the checkpoints and stops training at the budget."""

        def on_train_begin(self, *_: Any, **__: Any) -> None:
            clock.start()

        def on_log(self, cb_args: Any, cb_state: Any, control: Any, logs: dict | None = None, model: Any = None,
                   **_: Any) -> None:
            logs = logs or {}
            for key in TRL_LOG_KEYS:
                if isinstance(logs.get(key), (int, float)):
                    state.setdefault("logs", {}).setdefault(key, []).append(float(logs[key]))
            if "completions/mean_length" in logs:  # a generation happened in this step
                progress.train_tokens += round(logs["completions/mean_length"] * cb_args.generation_batch_size)
            if "loss" not in logs:
                return
            progress.steps = cb_state.global_step
            records = bridge.log.take()
            progress.episodes += len(records)
            progress.train_records.extend(records)
            state.setdefault("records", []).extend(records)
            print(step_line(cb_state.global_step, logs, records, clock), file=sys.stderr, flush=True)
            if clock.spent() or clock.checkpoint_due():
                label = "after" if clock.spent() else f"checkpoint {len(progress.curve)}"
                state["after"] = checkpoint(eval_policy, config, args, clock, progress, label)
                model.train()
            if clock.spent():
                control.should_training_stop = True

    trainer = GRPOTrainer(model=policy.model, reward_funcs=[bridge_mod.protocol_turns],
                          args=GRPOConfig(output_dir=str(out / "trl-run"), **grpo),
                          train_dataset=Dataset.from_list(bridge_mod.dataset_rows(bridge, tasks, seeds)),
                          processing_class=tokenizer, environment_factory=bridge.factories,
                          peft_config=peft_config, callbacks=[Budget()])
    trainer.remove_callback(PrinterCallback)  # its dict per step would drown the log; step_line() instead
    eval_policy = dataclasses.replace(policy, model=trainer.model)
    try:
        checks = bridge_mod.render_checks(trainer, policy, bridge, tasks[:64])
        trl_prompt_report, _ = heldout(bridge_mod.trl_prompt_policy(policy, bridge), config, args.eval_tasks)
        before = checkpoint(eval_policy, config, args, clock, progress, "before")
        trainer.model.train()
        trainer.train()
        if "after" not in state:  # training ended before the budget (it should not): evaluate now
            state["after"] = checkpoint(eval_policy, config, args, clock, progress, "after")
        if args.trl_full:
            trainer.save_model(str(out / "trl-model"))
        else:
            trainer.model.save_pretrained(str(out / "trl-adapter"))
    finally:
        bridge.close()
    return side_result(progress, clock, before, state["after"], started, train=train_shares(state.get("records", [])),
                       settings={"grpo_config": grpo, "peft": "lora" if peft_config else "full",
                                 "tool_schemas": args.trl_schemas},
                       trl_logs_mean={key: round(sum(v) / len(v), 4) for key, v in state.get("logs", {}).items()},
                       bridge={"environments": len(bridge.classes), "tool_calls_executed": bridge.log.tool_calls,
                               "unknown_tool_calls": bridge.log.unknown_tool_calls,
                               "final_turns_scored": bridge.log.final_turns_scored,
                               "before_with_trl_prompts": summary(trl_prompt_report),
                               **checks, "limits": bridge_mod.TRL_LIMITS})


def step_line(step: int, logs: dict[str, Any], records: Sequence[Any], clock: BudgetClock) -> str:
    """One stderr line per trl optimizer step, like our trainer's per-iteration line."""
    line = f"[trl] step {step:4d}  loss {logs.get('loss', 0.0):+.4f}  t={clock.train_s:.0f}s"
    if records:
        success = sum(r.outcome == "success" for r in records) / len(records)
        line += (f"  rollouts {len(records)}  success {success:5.1%}  reward {logs.get('reward', 0.0):+.2f}"
                 f"  tool calls/rollout {logs.get('tools/call_frequency', 0.0):.2f}"
                 f"  tokens/rollout {logs.get('completions/mean_length', 0.0):.0f}")
    return line


def task_seeds(config: Any, rows: int) -> list[int]:
    """The seeds our trainer draws its training tasks with, in order (``trainer.train.task_seeds``)."""
    from trainer.train import task_seeds as iteration_task_seeds

    seeds: list[int] = []
    while len(seeds) < rows:
        seeds += iteration_task_seeds(config, len(seeds) // config.rollout.batch_size, config.rollout.batch_size)
    return seeds[:rows]


# --------------------------------------------------------------------------------------------------
# The parent: both sides, the comparison, the picture
# --------------------------------------------------------------------------------------------------


def run_child(side: str, argv: Sequence[str], out: Path) -> dict[str, Any]:
    """Run one side in a fresh process and read back its JSON."""
    result = out / f"{side}.json"
    result.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--side", side]
    env = {**os.environ, **CHILD_ENV}
    completed = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False)
    if completed.returncode != 0 or not result.is_file():
        raise SystemExit(f"error: the {side} side failed (exit {completed.returncode}); see its output above")
    return json.loads(result.read_text())


def machine() -> dict[str, Any]:
    """Where the numbers come from (package versions read from metadata: importing them takes seconds)."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "versions": {name: metadata.version(name) for name in ("torch", "transformers", "trl", "peft")}}


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The headline numbers side by side."""
    return {
        "heldout_success_before": {s: r["before"]["success_rate"] for s, r in results.items()},
        "heldout_success_after": {s: r["after"]["success_rate"] for s, r in results.items()},
        "success_gain_points": {s: round(100 * (r["after"]["success_rate"] - r["before"]["success_rate"]), 1)
                                for s, r in results.items()},
        "trained_s": {s: r["trained_s"] for s, r in results.items()},
        "generated_train_tokens": {s: r["generated_tokens"]["train"] for s, r in results.items()},
        "peak_rss_mb": {s: r["peak_rss_mb"] for s, r in results.items()},
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.side:
        result = run_side(args, out)
        (out / f"{args.side}.json").write_text(json.dumps(result, indent=2, default=str))
        return
    from peer_trl_plot import draw_curves

    passed = list(sys.argv[1:] if argv is None else argv)
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    results = {side: run_child(side, passed, out) for side in sides}
    png = out / "success_vs_time.png"
    renderer = draw_curves({side: r["curve"] for side, r in results.items()}, png,
                           title=f"held-out success vs training time ({args.minutes:g} min budget)")
    print(json.dumps({
        "benchmark": "peer_trl",
        "budget_minutes": args.minutes,
        "checkpoints": args.checkpoints,
        "heldout_tasks": args.eval_tasks,
        "overrides": args.set,
        "trl_overrides": args.trl_set,
        "machine": {**machine(), "torch_threads": args.threads},
        "comparison": compare(results),
        "sides": results,
        "png": str(png) if renderer else None,
        "png_renderer": renderer,
    }, indent=2, default=str))


def run_side(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    import torch

    from trainer.config import load_config

    torch.set_num_threads(args.threads)
    overrides = ["eval.every=0", "checkpoint.every=0", "run.iterations=100000", *args.set]
    if args.model:
        overrides.append(f"model.name={args.model}")
    config = load_config(overrides=overrides)
    if config.task.servers_config is not None or config.task.transport != "inprocess":
        raise SystemExit("error: this benchmark runs the bundled servers in-process; unset task.servers_config "
                         "and task.transport")
    runner = run_ours if args.side == "ours" else run_trl
    load_before = os.getloadavg()[0]
    result = runner(config, args, out)
    # other processes on the machine change every timing: say how busy it was
    return {"side": args.side, "model": config.model.name, "suite": config.task.suite,
            "task_file": config.task.task_file, "torch_threads": args.threads,
            "load_average_1m": {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)}, **result}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget of each side")
    parser.add_argument("--eval-tasks", type=int, default=32, help="held-out tasks per evaluation")
    parser.add_argument("--checkpoints", type=int, default=5, help="evaluations during training (the last is 'after')")
    parser.add_argument("--model", help="shorthand for --set model.name=MODEL")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="our config, both sides")
    parser.add_argument("--trl-set", action="append", default=[], metavar="FIELD=VALUE", help="a GRPOConfig field")
    parser.add_argument("--trl-full", action="store_true", help="full fine-tune on trl's side instead of LoRA")
    parser.add_argument("--trl-schemas", choices=["python", "exact"], default="python",
                        help="trl's tool schemas: from Python signatures (its API), or ours verbatim (ablation)")
    parser.add_argument("--sides", default=",".join(SIDES), help="which sides to run, e.g. trl")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads per side")
    parser.add_argument("--out", default="out/peer_trl", help="folder for the PNG, side results and runs")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.eval_tasks < 1 or args.checkpoints < 1 or args.threads < 1:
        parser.error("--minutes must be > 0; --eval-tasks, --checkpoints and --threads at least 1")
    sides = {s.strip() for s in args.sides.split(",") if s.strip()}
    if not sides or sides - set(SIDES):
        parser.error(f"--sides takes {', '.join(SIDES)} or both, comma-separated; got {args.sides!r}")
    try:
        trl_overrides(args.trl_set)
    except SystemExit as exc:
        parser.error(str(exc).removeprefix("error: "))
    return args


if __name__ == "__main__":
    main()
