"""Checkpoints: adapter (PEFT format), value head, optimizer, scheduler and trainer state, atomically.

A checkpoint is a folder ``checkpoints/iter-000010/`` holding ``adapter/`` (loadable with
``PeftModel.from_pretrained`` and by ``qwen-workbench eval --adapter``; ``model/`` for full
fine-tunes), ``value_head.pt``, ``optimizer.pt``, ``scheduler.pt`` and ``state.json``. It is written
under a temporary name and renamed into place, so a crash never leaves half a checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

STATE_FILE = "state.json"


@dataclass(frozen=True)
class LoadedState:
    iteration: int
    state: dict[str, Any]


def checkpoint_name(iteration: int) -> str:
    return f"iter-{iteration:06d}"


def save_checkpoint(folder: Path, iteration: int, model: torch.nn.Module, value_head: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any, state: dict[str, Any]) -> Path:
    """Write checkpoint ``iteration`` under ``folder`` atomically and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / checkpoint_name(iteration)
    temporary = folder / f".tmp-{checkpoint_name(iteration)}-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    if hasattr(model, "peft_config"):
        model.save_pretrained(temporary / "adapter")
    else:
        model.save_pretrained(temporary / "model")
    torch.save(value_head.state_dict(), temporary / "value_head.pt")
    torch.save(optimizer.state_dict(), temporary / "optimizer.pt")
    torch.save(scheduler.state_dict(), temporary / "scheduler.pt")
    (temporary / STATE_FILE).write_text(json.dumps({"iteration": iteration, **state}, indent=2))
    if final.exists():
        shutil.rmtree(final)
    os.replace(temporary, final)
    return final


def latest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (temporary folders are ignored)."""
    candidates = sorted(p for p in folder.glob("iter-*") if (p / STATE_FILE).is_file())
    return candidates[-1] if candidates else None


def load_checkpoint(path: Path, model: torch.nn.Module, value_head: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, scheduler: Any) -> LoadedState:
    """Restore weights and optimizer state saved by ``save_checkpoint`` into live objects."""
    if (path / "adapter").is_dir():
        from peft import set_peft_model_state_dict

        weights = load_file(str(path / "adapter" / "adapter_model.safetensors"))
        set_peft_model_state_dict(model, weights)
        # Further adapters (the separate critic's) are saved by PEFT in sub-folders named after them.
        for name in getattr(model, "peft_config", {}):
            extra = path / "adapter" / name / "adapter_model.safetensors"
            if name != "default" and extra.is_file():
                set_peft_model_state_dict(model, load_file(str(extra)), adapter_name=name)
    else:
        from transformers import AutoModelForCausalLM

        saved = AutoModelForCausalLM.from_pretrained(path / "model")
        model.load_state_dict(saved.state_dict())
    device = next(value_head.parameters()).device
    value_head.load_state_dict(torch.load(path / "value_head.pt", map_location=device))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location=device))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt"))
    state = json.loads((path / STATE_FILE).read_text())
    return LoadedState(int(state["iteration"]), state)


def prune(folder: Path, keep_last: int, keep: set[Path]) -> list[Path]:
    """Delete all but the newest ``keep_last`` checkpoints and those in ``keep``; return the deleted."""
    candidates = sorted(p for p in folder.glob("iter-*") if p.is_dir())
    kept = {path.resolve() for path in keep}
    doomed = [p for p in candidates[: max(0, len(candidates) - keep_last)] if p.resolve() not in kept]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed
