"""A policy process: serve chat commands for a run whose trainer is not running.

``qwen-workbench serve --run-dir D [--checkpoint C]`` loads the run's model with the chosen
checkpoint's adapter (the best one by default, else the newest, else the base model) and answers
``chat`` commands from the run's commands table until it is signalled or ``--idle-exit`` seconds pass
without a command. The run's training state, pid and heartbeat are left as they were (a crashed
run still reads crashed while its checkpoint chats), and other commands are left for a trainer.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from trainer.checkpoints import latest_checkpoint
from trainer.config import Config
from trainer.model_loading import load_policy
from trainer.store import RunStore


def pick_checkpoint(store: RunStore, requested: str | None) -> Path | None:
    if requested:
        return Path(requested)
    best = store.best_checkpoint()
    if best is not None and Path(best.path).is_dir():
        return Path(best.path)
    return latest_checkpoint(store.checkpoints_dir)


def serve(run_dir: Path, checkpoint: str | None = None, idle_exit_s: float = 1800.0, echo=print) -> None:
    from trainer.chat import chat_turns

    # claim=False: answering chat must not make a stopped or crashed run look trained again
    store = RunStore.open_writer(run_dir, claim=False)
    try:
        config = Config.from_dict(store.run_info().config)
        path = pick_checkpoint(store, checkpoint)
        model = str(path / "adapter") if path is not None and (path / "adapter").is_dir() else config.model.name
        policy = load_policy(model, device=config.model.device, lora=None, thinking=config.model.thinking)
        echo(f"serving chat for {run_dir.name} with {model}")
        last = time.monotonic()
        while time.monotonic() - last < idle_exit_s:
            # chat only: a trainer resumed beside this process takes its own commands
            for command in store.take_pending_commands(kinds=("chat",)):
                last = time.monotonic()
                try:
                    result = chat_turns(policy, command.payload or {}, config,
                                        progress=partial(store.command_progress, command.id))
                except Exception as exc:  # noqa: BLE001 - answer the caller, keep serving
                    store.finish_command(command.id, "failed", {"error": f"{type(exc).__name__}: {exc}"[:500]})
                    continue
                store.finish_command(command.id, "done", result)
            time.sleep(0.1)
    finally:
        store.close()
