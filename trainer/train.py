"""The trainer process: PPO iterations against the MCP environment, steered through the run store.

``qwen-workbench train`` runs this headless; the workbench starts the same code as a child process.
Between steps it polls the store's commands table: pause, resume, stop, checkpoint, eval, chat.
Every iteration is seeded from (run seed, iteration), so a run resumed from a checkpoint produces
the same iterations as one that was never interrupted.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch

from trainer import ppo
from trainer.checkpoints import latest_checkpoint, load_checkpoint, prune, save_checkpoint
from trainer.config import Config
from trainer.env import MCPGymEnv
from trainer.evaluation import evaluate, summarise
from trainer.model_loading import LoraSettings, Policy, load_policy
from trainer.ppo_core import (
    AdaptiveKLController,
    FixedKLController,
    explained_variance,
    lr_schedule,
    masked_mean,
)
from trainer.rollout import EpisodeRollout, SamplingSettings, play_episodes
from trainer.store import EpisodeEntry, RunStore, TurnTokens, collect_tool_stats

log = logging.getLogger(__name__)

CRITIC_ADAPTER = "critic"  # the second LoRA adapter of model.critic = "separate"


class StopRequested(Exception):
    """A stop command arrived: checkpoint and leave cleanly."""


# Training tasks are drawn with seeds from 10^9 up, away from the seeds the bootstrap's demonstrations
# used (BootstrapRecipe.demonstration_seeds: 0..5,999 for the shipped model). Starting at 0, the
# first six iterations replayed tasks the model was supervised on, which it solves about half again
# as often as fresh ones, and the start of every training curve looked better than it was.
TASK_SEED_BASE = 1_000_000_000


def iteration_seed(config: Config, iteration: int) -> int:
    return config.run.seed * 1_000_003 + iteration


def task_seeds(config: Config, iteration: int, episodes: int) -> list[int]:
    """The task seed of each episode of an iteration: ``rollout.group_size`` consecutive episodes share one."""
    first = TASK_SEED_BASE + iteration_seed(config, iteration) * 1_000
    return [first + j // config.rollout.group_size for j in range(episodes)]


class Trainer:
    """Owns the policy, the optimizer, the environments and the run store of one run."""

    def __init__(self, config: Config, run_dir: Path, *, resume: bool = False, echo=print) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.echo = echo
        self.paused = False
        self.iteration = 0
        self.best_success: float | None = None
        if resume:
            self.store = RunStore.open_writer(self.run_dir)
        else:
            self.store = RunStore.create(self.run_dir, self.run_dir.name, config.to_dict(), config.model.name)
        self.store.set_state("running")
        self.store.start_heartbeat()
        torch.manual_seed(config.run.seed)
        self.policy = self._load_policy()
        self.model = self.policy.model
        self.critic_adapter = self._add_critic_adapter()
        # With LoRA the reference is the base with the adapters disabled; a full fine-tune has no
        # adapters to disable, so it keeps a frozen copy of its starting weights instead.
        self.reference = None if config.lora.enabled else copy.deepcopy(self.model).eval().requires_grad_(False)
        self.kl_controller = (
            AdaptiveKLController(config.ppo.kl_coef, config.ppo.kl_target, config.ppo.kl_horizon)
            if config.ppo.adaptive_kl else FixedKLController(config.ppo.kl_coef)
        )
        hidden = ppo.unwrap(self.model).config.hidden_size
        self.value_head = ppo.ValueHead(hidden, stop_gradient=config.model.critic == "head").to(self.policy.device)
        self.optimizer = self._optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lr_schedule(config.optim.lr_schedule, config.optim.warmup_iterations, config.run.iterations),
        )
        self.envs = [self._env(config.task.train_split) for _ in range(config.rollout.batch_size)]
        if resume:
            self._restore()

    # -- setup -----------------------------------------------------------------------------------

    def _load_policy(self) -> Policy:
        model, lora = self.config.model, self.config.lora
        settings = None
        if lora.enabled:
            targets = lora.target_modules
            settings = LoraSettings(r=lora.r, alpha=lora.alpha, dropout=lora.dropout,
                                    target_modules=targets if targets == "all-linear" else tuple(targets.split(",")))
        return load_policy(model.name, device=model.device, quantize_4bit=model.quantize_4bit, lora=settings,
                           gradient_checkpointing=model.gradient_checkpointing, thinking=model.thinking)

    def _add_critic_adapter(self) -> str | None:
        """For ``model.critic = "separate"``: a second LoRA adapter, configured like the policy's."""
        if self.config.model.critic != "separate":
            return None
        settings = copy.deepcopy(self.model.peft_config["default"])
        self.model.add_adapter(CRITIC_ADAPTER, settings)
        self.model.set_adapter("default")
        self.model.set_requires_grad(["default", CRITIC_ADAPTER], requires_grad=True)
        return CRITIC_ADAPTER

    def _optimizer(self) -> torch.optim.Optimizer:
        optim = self.config.optim
        groups = [
            {"params": [p for p in self.model.parameters() if p.requires_grad], "lr": optim.lr},
            {"params": list(self.value_head.parameters()), "lr": optim.value_head_lr or optim.lr},
        ]
        kwargs = {"betas": (optim.adam_beta1, optim.adam_beta2), "eps": optim.adam_eps,
                  "weight_decay": optim.weight_decay}
        if optim.optimizer == "paged_adamw_8bit":
            import bitsandbytes as bnb

            return bnb.optim.PagedAdamW8bit(groups, **kwargs)
        return torch.optim.AdamW(groups, **kwargs)

    def _env(self, split: str) -> MCPGymEnv:
        task = self.config.task
        return MCPGymEnv(
            suite=task.suite, split=split, task_file=task.task_file, servers_config=task.servers_config,
            transport=task.transport, rewards=self.config.rewards.as_reward_config(), max_turns=task.max_turns,
            max_structural_failures=task.max_structural_failures, call_timeout_s=task.call_timeout_s,
        )

    def _restore(self) -> None:
        path = latest_checkpoint(self.store.checkpoints_dir)
        if path is None:
            self.echo("no checkpoint to resume from: starting at iteration 0")
            self.store.discard_after(-1)
            return
        loaded = load_checkpoint(path, self.model, self.value_head, self.optimizer, self.scheduler)
        self.iteration = loaded.iteration
        self.best_success = loaded.state.get("best_success")
        self.kl_controller.value = float(loaded.state.get("kl_coef", self.kl_controller.value))
        self.store.discard_after(self.iteration - 1)  # the iterations after the checkpoint are redone
        self.echo(f"resumed from {path.name}: continuing at iteration {self.iteration}")

    # -- the loop --------------------------------------------------------------------------------

    def run(self) -> None:
        """Iterate until the configured count or a stop command; record a crash before re-raising."""
        try:
            while self.iteration < self.config.run.iterations:
                self.handle_commands()
                self.train_iteration()
                self.iteration += 1
                self._periodic()
            if self.config.checkpoint.save_final:
                self.checkpoint()
            self.store.set_state("finished")
        except StopRequested:
            self.checkpoint()
            self.store.set_state("stopped")
        except BaseException as exc:
            self.store.set_state("crashed", error=f"{type(exc).__name__}: {exc}"[:500])
            raise
        finally:
            self.close()

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.store.stop_heartbeat()
        self.store.close()

    def _periodic(self) -> None:
        every_eval, every_ckpt = self.config.eval.every, self.config.checkpoint.every
        if every_eval and self.iteration % every_eval == 0:
            self.run_eval()
        if every_ckpt and self.iteration % every_ckpt == 0:
            self.checkpoint()

    def train_iteration(self) -> dict[str, float]:
        """Rollout, reference/value pass, advantages, update; metrics and episodes into the store."""
        config, iteration = self.config, self.iteration
        seed = iteration_seed(config, iteration)
        torch.manual_seed(seed)
        started = time.perf_counter()
        settings = SamplingSettings(max_new_tokens=config.rollout.max_new_tokens, temperature=config.rollout.temperature,
                                    top_p=config.rollout.top_p, max_context_tokens=config.rollout.max_episode_tokens)
        seeds = task_seeds(config, iteration, len(self.envs))
        rollouts, stats = play_episodes(self.policy, self.envs, seeds, settings, generation_seed=seed)
        rollout_s = time.perf_counter() - started

        tick = time.perf_counter()
        batch = ppo.collate(rollouts, self.policy.pad_token_id, self.policy.device)
        ppo.score(self.model, self.value_head, batch, config.rollout.temperature, config.ppo.micro_batch_size,
                  reference=self.reference, critic_adapter=self.critic_adapter)
        kl_coef = self.kl_controller.value
        ppo.advantages(batch, kl_kind=config.ppo.kl_kind, kl_coef=kl_coef, gamma=config.ppo.gamma,
                       lam=config.ppo.lam, whiten=config.ppo.whiten_advantages, group_size=config.rollout.group_size)
        score_s = time.perf_counter() - tick

        tick = time.perf_counter()
        generator = torch.Generator().manual_seed(seed)
        self.model.train()
        if config.model.gradient_checkpointing:
            ppo.unwrap(self.model).gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        update = ppo.update(self.model, self.value_head, self.optimizer, batch, config, generator,
                            config.rollout.temperature, critic_adapter=self.critic_adapter)
        self.model.eval()
        self.scheduler.step()
        update_s = time.perf_counter() - tick

        report = summarise(rollouts, config.task.suite, config.task.train_split, stats.generated_tokens,
                           stats.generation_s, stats.wall_s)
        mask = batch.action_mask
        episode_kl = float((batch.kl * mask).sum(dim=1).mean())
        self.kl_controller.update(episode_kl, len(rollouts))  # beta for the next iteration
        metrics = {
            "mean_return": report.mean_return,
            "success_rate": report.success_rate,
            "status_shares": report.status_shares,
            "kl": episode_kl,
            "policy_loss": update.policy_loss,
            "value_loss": update.value_loss,
            "entropy": update.entropy,
            "clip_fraction": update.clip_fraction,
            "explained_variance": explained_variance(batch.old_values, batch.returns, mask),
            "grad_norm": update.grad_norm,
            "tokens_per_s": stats.tokens_per_s,
            "episodes_per_s": len(rollouts) / max(1e-9, time.perf_counter() - started),
            "step_time_s": time.perf_counter() - started,
            "rollout_time_s": rollout_s,
            "ref_value_time_s": score_s,
            "update_time_s": update_s,
            "lr": self.scheduler.get_last_lr()[0],
            "kl_coef": kl_coef,
            "peak_gpu_mem_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
            "approx_kl": update.approx_kl,
            "skipped_steps": update.skipped_steps,
            "mean_token_kl": float(masked_mean(batch.kl, mask)),
            "generated_tokens": stats.generated_tokens,
        }
        self._store_episodes(rollouts, batch, iteration, "train", config.task.train_split)
        self.store.add_iteration(iteration, metrics)
        self.store.add_tool_stats(iteration, collect_tool_stats([r.record for r in rollouts]))
        self.echo(self._summary_line(iteration, metrics))
        return metrics

    def _summary_line(self, iteration: int, m: dict[str, Any]) -> str:
        shares = m["status_shares"]
        return (f"iter {iteration:4d}  return {m['mean_return']:+6.2f}  success {m['success_rate']:5.1%}  "
                f"invalid_json {shares['invalid_json']:4.0%}  structural {shares['structural_fail']:4.0%}  "
                f"kl {m['kl']:.3f}  pg {m['policy_loss']:+.3f}  vf {m['value_loss']:.3f}  "
                f"{m['tokens_per_s']:.0f} tok/s  {m['step_time_s']:.1f}s "
                f"(rollout {m['rollout_time_s']:.1f} / ref+value {m['ref_value_time_s']:.1f} / "
                f"update {m['update_time_s']:.1f})")

    def _store_episodes(self, rollouts: list[EpisodeRollout], batch: ppo.Batch | None, iteration: int, phase: str,
                        split: str) -> None:
        entries = []
        for row, rollout in enumerate(rollouts):
            entries.append(EpisodeEntry(rollout.record, split=split, tokens=self._turn_tokens(rollout, batch, row)))
        self.store.add_episodes(entries, iteration, phase=phase)

    @staticmethod
    def _turn_tokens(rollout: EpisodeRollout, batch: ppo.Batch | None, row: int) -> list[TurnTokens]:
        """Per-turn token arrays (ids, log-probs, and the PPO quantities when a batch is given)."""
        stream = rollout.stream
        turns, start = [], None
        for index, is_action in enumerate(stream.action_mask + [0]):
            if is_action and start is None:
                start = index
            elif not is_action and start is not None:
                span = slice(start, index)
                extra: dict[str, list[float]] = {}
                if batch is not None:
                    for name in ("ref_logprobs", "old_values", "advantages", "returns"):
                        extra[name] = getattr(batch, name)[row, span].tolist()
                turns.append(TurnTokens(
                    turn_index=len(turns), token_ids=stream.token_ids[span], logprobs=rollout.logprobs[span],
                    ref_logprobs=extra.get("ref_logprobs"), values=extra.get("old_values"),
                    advantages=extra.get("advantages"), returns=extra.get("returns")))
                start = None
        return turns

    # -- evaluation and checkpoints --------------------------------------------------------------

    def run_eval(self) -> dict[str, Any]:
        config = self.config
        settings = SamplingSettings(max_new_tokens=config.rollout.max_new_tokens, greedy=config.eval.greedy,
                                    temperature=config.rollout.temperature,
                                    max_context_tokens=config.rollout.max_episode_tokens)
        report, rollouts = evaluate(self.policy, suite=config.task.suite, split=config.task.eval_split,
                                    episodes=config.eval.num_tasks, batch_size=config.rollout.batch_size,
                                    settings=settings, seed=config.eval.seed, task_file=config.task.task_file,
                                    servers_config=config.task.servers_config)
        self._store_episodes(rollouts, None, self.iteration, "eval", config.task.eval_split)
        self.store.add_eval(self.iteration, config.task.suite, config.task.eval_split, report.episodes,
                            report.success_rate, mean_return=report.mean_return, status_shares=report.status_shares)
        self.echo(f"eval @ {self.iteration}: " + report.summary())
        if self.best_success is None or report.success_rate > self.best_success:
            self.best_success = report.success_rate
        self.last_eval = report
        result = report.to_dict()
        regression = self._run_regression_eval(settings)
        if regression is not None:
            result["regression"] = regression
        return result

    def _run_regression_eval(self, settings: SamplingSettings) -> dict[str, Any] | None:
        """Play the run's regression tasks (promoted from flagged episodes), each once, if there are any.

        Stored as an eval with suite and split "regression"; it never decides the best checkpoint.
        """
        from mcp_servers.tasks.model import TaskFormatError
        from trainer.curation import REGRESSION_SUITE, regression_tasks

        try:
            tasks = regression_tasks(self.run_dir)
        except TaskFormatError as exc:  # a hand-edited file must not stop training
            self.echo(f"regression eval skipped: {exc}")
            return None
        if not tasks:
            return None
        from mcp_servers.config import ConfigError
        from mcp_servers.hub import HubError

        config = self.config
        try:
            report, rollouts = evaluate(self.policy, suite=REGRESSION_SUITE, split=REGRESSION_SUITE,
                                        batch_size=config.rollout.batch_size, settings=settings,
                                        seed=config.eval.seed, servers_config=config.task.servers_config, tasks=tasks)
        except (ConfigError, HubError) as exc:  # e.g. a task needing a server this run does not configure
            self.echo(f"regression eval skipped: {exc}")
            return None
        self._store_episodes(rollouts, None, self.iteration, "eval", REGRESSION_SUITE)
        self.store.add_eval(self.iteration, REGRESSION_SUITE, REGRESSION_SUITE, report.episodes, report.success_rate,
                            mean_return=report.mean_return, status_shares=report.status_shares)
        self.echo(f"regression eval @ {self.iteration}: " + report.summary())
        return report.to_dict()

    def checkpoint(self) -> Path:
        state = {"best_success": self.best_success, "kl_coef": self.kl_controller.value,
                 "config": self.config.to_dict()}
        path = save_checkpoint(self.store.checkpoints_dir, self.iteration, self.model, self.value_head,
                               self.optimizer, self.scheduler, state)
        report = getattr(self, "last_eval", None)
        success = report.success_rate if report is not None else None
        is_best = success is not None and success >= (self.best_success or 0.0)
        self.store.add_checkpoint(self.iteration, str(path), heldout_success=success, is_best=is_best)
        best = self.store.best_checkpoint()
        keep = {Path(best.path)} if best is not None else set()
        prune(self.store.checkpoints_dir, self.config.checkpoint.keep_last, keep)
        return path

    # -- commands --------------------------------------------------------------------------------

    def handle_commands(self) -> None:
        """Run pending commands; while paused, keep serving them until resume or stop."""
        while True:
            for command in self.store.take_pending_commands():
                self._run_command(command)
            if not self.paused:
                return
            time.sleep(0.2)

    def _run_command(self, command: Any) -> None:
        kind = command.kind
        try:
            if kind == "pause":
                self.paused = True
                self.store.set_state("paused")
                result: Any = {"state": "paused", "iteration": self.iteration}
            elif kind == "resume":
                self.paused = False
                self.store.set_state("running")
                result = {"state": "running", "iteration": self.iteration}
            elif kind == "stop":
                self.store.finish_command(command.id, "done", {"state": "stopping"})
                raise StopRequested
            elif kind == "checkpoint":
                result = {"path": str(self.checkpoint())}
            elif kind == "eval":
                result = self.run_eval()
            elif kind == "chat":
                from trainer.chat import chat_turns

                result = chat_turns(self.policy, command.payload or {}, self.config,
                                    progress=partial(self.store.command_progress, command.id))
                self.store.add_episodes([EpisodeEntry(result["record"], split=None)], self.iteration, phase="chat")
            else:
                raise ValueError(f"unknown command {kind!r}")
        except StopRequested:
            raise
        except Exception as exc:  # noqa: BLE001 - a bad command must not kill the run
            log.warning("command %s failed: %s", kind, exc)
            self.store.finish_command(command.id, "failed", {"error": f"{type(exc).__name__}: {exc}"[:500]})
            return
        self.store.finish_command(command.id, "done", result)


def train(config: Config, run_dir: Path, *, resume: bool = False, echo=print) -> None:
    """Build a trainer and run it to the end (or to a stop command)."""
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, torch.get_num_threads())))
    trainer = Trainer(config, run_dir, resume=resume, echo=echo)
    trainer.run()


__all__ = ["StopRequested", "Trainer", "train"]
