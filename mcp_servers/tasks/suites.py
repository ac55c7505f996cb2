"""Task suites: seeded generators per domain, split into disjoint train and held-out instances.

A domain module exposes ``generate(rng) -> Task`` that draws one random task. An instance belongs
to exactly one split, decided by a hash of its instruction, so the splits can never share an
instance whatever seeds are used.
"""

from __future__ import annotations

import hashlib
import importlib
import random
from collections.abc import Callable
from typing import Any

from mcp_servers.tasks.model import Task, ToolCall, Verifier

SPLITS = ("train", "heldout")
HELDOUT_SHARE = 5  # one instance in five is held out

Generator = Callable[[random.Random], Task]

# suite name -> module under mcp_servers.tasks providing `generate`
DOMAIN_SUITES = {
    "math": "math",
    "search": "search",
    "database": "database",
    "data": "data",
    "multi": "mixed",
}
MIXTURES = {"all": ("math", "search", "database", "data", "multi")}


class UnknownSuiteError(ValueError):
    """A suite name that is neither a domain suite nor a mixture."""


def suite_names() -> list[str]:
    return [*DOMAIN_SUITES, *MIXTURES]


def split_of(instruction: str) -> str:
    """The split an instance belongs to, from a stable hash of its instruction."""
    digest = hashlib.sha256(instruction.encode("utf-8")).digest()
    return "heldout" if digest[0] % HELDOUT_SHARE == 0 else "train"


def make_task(
    suite: str,
    instruction: str,
    servers: list[str] | tuple[str, ...],
    reference_calls: list[ToolCall],
    verifier: Verifier,
    *,
    tools: list[str] | tuple[str, ...] = (),
    tags: list[str] | tuple[str, ...] = (),
    answer: Any = None,
    max_turns: int | None = None,
) -> Task:
    """Build a task whose id is a stable hash of its instruction (same instance, same id)."""
    digest = hashlib.sha256(instruction.encode("utf-8")).hexdigest()[:10]
    return Task(
        id=f"{suite}-{digest}",
        suite=suite,
        instruction=instruction,
        servers=tuple(servers),
        tools=tuple(tools),
        reference_calls=tuple(reference_calls),
        verifier=verifier,
        max_turns=max_turns if max_turns is not None else max(3, len(reference_calls) + 2),
        tags=tuple(tags),
        answer=answer,
    )


def generator_for(suite: str) -> Generator:
    if suite not in DOMAIN_SUITES:
        raise UnknownSuiteError(f"unknown suite {suite!r}; choose from {', '.join(suite_names())}")
    module = importlib.import_module(f"mcp_servers.tasks.{DOMAIN_SUITES[suite]}")
    return module.generate


def sample_tasks(suite: str, split: str = "train", n: int = 10, seed: int = 0) -> list[Task]:
    """``n`` distinct tasks of ``suite`` from ``split``, the same list for the same arguments.

    A mixture draws its domain suites in turn. Duplicates are skipped while fresh instances can
    still be found; a domain with few instances may repeat rather than return fewer than ``n``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose train or heldout")
    members = MIXTURES.get(suite, (suite,))
    generators = [generator_for(name) for name in members]
    rng = random.Random(f"{suite}/{split}/{seed}")
    # A mixture takes its domains in turn from a seeded starting point, so that one task per seed
    # (how environments draw) covers every domain, not just the first.
    first = rng.randrange(len(generators))
    tasks: list[Task] = []
    seen: set[str] = set()
    attempts = 0
    while len(tasks) < n:
        generate = generators[(first + len(tasks)) % len(generators)]
        task = generate(rng)
        attempts += 1
        if attempts > 2000 * (n + 10):
            raise RuntimeError(f"suite {suite!r} cannot produce {n} tasks of split {split!r}")
        if split_of(task.instruction) != split:
            continue
        if task.id in seen and attempts < 200 * (n + 10):
            continue
        seen.add(task.id)
        tasks.append(task)
    return tasks
