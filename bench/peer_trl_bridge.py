"""The bridge from our MCP environment to trl's ``GRPOTrainer(environment_factory=...)`` API.

trl's multi-turn tool API works on Python objects: an environment class whose public methods are the
tools (their JSON schemas come from type hints and Google-style docstrings), ``reset(**row)`` per
rollout and ``get_reward()`` once the rollout ends. This module maps our world onto it:

- one environment class per distinct set of offered tools (a dict of factories keyed by that set),
  so each task's prompt lists only its own tools, as ``MCPGymEnv`` does; each dataset row names its
  class in the ``environment`` column and carries the task as JSON for ``reset``;
- each tool method is generated from the MCP tool's input schema (types, enums, descriptions) and,
  when trl calls it, plays the call as one turn of a real ``MCPGymEnv`` episode against our bundled
  servers: same execution, verifier, statuses and rewards; the tool's answer (or its error) is what
  the model reads back;
- ``get_reward()`` returns the summed reward of those executed turns;
- the turns trl never shows an environment are scored by a reward function, ``protocol_turns``, that
  replays them through the same ``MCPGymEnv``: calls to tools the task does not offer (trl answers
  them itself with "Tool X not found.") and the final assistant turn without a parsable call (a
  malformed ``<tool_call>`` or plain text: trl ends the rollout there). The two parts add up to the
  episode return ``MCPGymEnv`` gives the same turns.

What trl's API cannot express is listed in ``TRL_LIMITS`` (it goes into the benchmark's JSON).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mcp_servers.hub import ToolHub, bundled_spec
from mcp_servers.registry import BUNDLED_SERVERS
from mcp_servers.tasks.model import Task
from mcp_servers.tasks.taskfile import load_task_file
from trainer.conversation import tool_call_text
from trainer.env import SYSTEM_PROMPT, MCPGymEnv, draw_task
from trainer.loop import shared_loop
from trainer.records import EpisodeRecord
from trainer.rewards import RewardConfig

# Method names trl gives a meaning of its own; a tool of that name cannot be exposed.
RESERVED_NAMES = frozenset({"reset", "get_reward"})
EPISODE_OVER = "Error: the episode is over; stop calling tools."

TRL_LIMITS = [
    "episode end: trl keeps generating while the model emits tool calls (up to max_tool_calling_iterations "
    "and max_completion_length); the environment cannot end a rollout at success, the turn limit or the "
    "structural-failure streak, so later calls get an 'episode is over' answer and cost tokens",
    "reward placement: one scalar per rollout (GRPO's group-normalised advantage on every token), not a "
    "reward on the last token of each turn",
    "malformed calls: trl's parser falls back to plain text and ends the rollout, so the model never sees "
    "our parse-error feedback and cannot recover; the turn is still scored invalid_json by protocol_turns",
    "hallucinated tools: trl answers 'Tool X not found.' itself without telling the environment; "
    "protocol_turns scores them structural_fail afterwards, out of turn order",
    "parallel calls: each call of a multi-call turn is its own environment step (our env scores one turn)",
    "tool schemas: rebuilt from Python signatures and docstrings; key order, minimum/maximum and defaults "
    "of our MCP schemas are not expressible, and tools are listed alphabetically (trl sorts the methods), "
    "so trl's prompts differ from the ones the model was bootstrapped on and is evaluated on",
    "argument typing: trl casts arguments with the schema ('7' -> 7 for an integer) and accepts a call "
    "without 'arguments' or with extra keys, which our parser rejects as invalid_json",
    "per-turn cap: max_new_tokens per turn via generation_kwargs, but the episode cap counts tool-response "
    "tokens in max_completion_length, not in a context window",
]


# --------------------------------------------------------------------------------------------------
# Tool methods from MCP schemas
# --------------------------------------------------------------------------------------------------

_JSON_TYPES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool,
                               "object": dict, "null": type(None)}


def python_type(schema: dict[str, Any]) -> Any:
    """The type hint transformers' ``get_json_schema`` turns back into (nearly) this JSON schema."""
    if "enum" in schema:
        return Literal[tuple(schema["enum"])]
    if "anyOf" in schema:
        return _union([python_type(option) for option in schema["anyOf"]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return _union([python_type({"type": k}) for k in kind])
    if kind == "array":
        items = schema.get("items")
        return list[python_type(items)] if isinstance(items, dict) and items else list
    return _JSON_TYPES.get(kind, Any)


def _union(hints: list[Any]) -> Any:
    """``a | b | ...`` of the hints (a single hint stays itself)."""
    unique = list(dict.fromkeys(hints))
    return unique[0] if len(unique) == 1 else typing.Union[tuple(unique)]  # noqa: UP007 - built at run time


def tool_method(schema: dict[str, Any]) -> Callable[..., str]:
    """A method named after the tool whose signature and docstring describe its MCP input schema.

    The body forwards every argument trl parsed, unchecked, to the real server (so a wrong or missing
    argument is the server's ``tool_error``, as in ``MCPGymEnv``).
    """
    function = schema["function"]
    name = function["name"]
    parameters = function.get("parameters") or {}
    properties: dict[str, dict[str, Any]] = parameters.get("properties") or {}
    required = set(parameters.get("required") or ())

    def method(self: McpToolEnv, **arguments: Any) -> str:
        return self._call(name, arguments)

    signature = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    lines = []
    for argument, spec in properties.items():
        hint = python_type(spec)
        default = inspect.Parameter.empty if argument in required else spec.get("default")
        signature.append(inspect.Parameter(argument, inspect.Parameter.KEYWORD_ONLY, default=default,
                                           annotation=hint))
        annotations[argument] = hint
        description = " ".join(str(spec.get("description") or argument).split())
        lines.append(f"    {argument}: {description}")
    method.__name__ = method.__qualname__ = name
    method.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    method.__annotations__ = annotations
    summary = " ".join(str(function.get("description") or name).split())
    method.__doc__ = summary + ("\n\nArgs:\n" + "\n".join(lines) if lines else "")
    method.__mcp_schema__ = schema  # type: ignore[attr-defined]  # read only by use_exact_schemas()
    return method


def use_exact_schemas() -> None:
    """Ablation (``--trl-schemas exact``): transformers renders our tool methods with our MCP schemas
    verbatim instead of the ones it derives from signatures. This patches transformers in this process;
    it is not something trl's API offers, and tools stay in trl's alphabetical order."""
    from transformers.utils import chat_template_utils
    from transformers.utils.chat_parsing import response_parser

    original = chat_template_utils.get_json_schema
    if getattr(original, "mcp_exact", False):
        return

    def exact(func: Callable[..., Any]) -> dict[str, Any]:
        schema = getattr(func, "__mcp_schema__", None)
        return copy.deepcopy(schema) if schema is not None else original(func)

    exact.mcp_exact = True  # type: ignore[attr-defined]
    chat_template_utils.get_json_schema = exact
    response_parser.get_json_schema = exact


# --------------------------------------------------------------------------------------------------
# Environments
# --------------------------------------------------------------------------------------------------


@dataclass
class EpisodeLog:
    """Every finished trl rollout's record, for the benchmark's training statistics."""

    records: list[EpisodeRecord] = field(default_factory=list)
    tool_calls: int = 0
    unknown_tool_calls: int = 0  # calls trl answered itself: unknown tools, arguments that are not an object
    final_turns_scored: int = 0

    def take(self) -> list[EpisodeRecord]:
        taken, self.records = self.records, []
        return taken


@dataclass(frozen=True)
class EnvSettings:
    """How each rollout's ``MCPGymEnv`` is built (the same settings our PPO trainer uses)."""

    rewards: RewardConfig = field(default_factory=RewardConfig)
    max_turns: int | None = None
    max_structural_failures: int = 3
    call_timeout_s: float = 5.0


class McpToolEnv:
    """One trl rollout = one ``MCPGymEnv`` episode. Subclasses add one method per offered tool.

    Only ``reset`` and ``get_reward`` are public here: trl exposes every other public function of the
    class as a tool.
    """

    tool_names: tuple[str, ...] = ()

    def __init__(self, settings: EnvSettings, log: EpisodeLog, pool: list[McpToolEnv]) -> None:
        self._settings = settings
        self._log = log
        self._env = MCPGymEnv(rewards=settings.rewards, max_turns=settings.max_turns,
                              max_structural_failures=settings.max_structural_failures,
                              call_timeout_s=settings.call_timeout_s)
        self._tool_reward = 0.0
        self._done = True
        pool.append(self)  # so the benchmark can close every environment trl created

    def reset(self, task: str, seed: int | None = None, **_row: Any) -> None:
        """Start the row's task on fresh servers; the prompt is already in the dataset row."""
        self._env.reset(seed=seed, options={"task": Task.from_dict(json.loads(task))})
        self._tool_reward = 0.0
        self._done = False

    def get_reward(self) -> float:
        """The summed reward of the turns trl executed through this environment's tools."""
        return self._tool_reward

    # -- private: not tools ------------------------------------------------------------------------

    def _call(self, name: str, arguments: dict[str, Any]) -> str:
        """Play one call as one environment turn and return what the model reads back."""
        if self._done:
            return EPISODE_OVER
        self._log.tool_calls += 1
        reward, feedback = self._step(tool_call_text(name, arguments))
        self._tool_reward += reward
        return feedback

    def _step(self, action: str) -> tuple[float, str]:
        _, reward, terminated, truncated, info = self._env.step(action)
        self._done = terminated or truncated
        return reward, info["feedback"]

    def _finish(self, messages: Sequence[dict[str, Any]]) -> float:
        """Score the turns trl kept from the environment, close the episode and log its record."""
        reward = 0.0
        for message in messages:
            for call in message.get("tool_calls") or () if message.get("role") == "assistant" else ():
                function = call.get("function") or {}
                name, arguments = str(function.get("name")), function.get("arguments")
                if self._done or (name in self.tool_names and isinstance(arguments, dict)):
                    continue  # executed through the tool method
                # trl answered it itself ("Tool X not found.", or arguments it could not spread)
                self._log.unknown_tool_calls += 1
                reward += self._step(tool_call_text(name, arguments))[0]
        last = messages[-1] if messages else {}
        if not self._done and last.get("role") == "assistant" and not last.get("tool_calls"):
            self._log.final_turns_scored += 1
            reward += self._step(str(last.get("content") or ""))[0]
        record = self._env.record
        if record is not None:
            if not self._done:
                record.outcome = "truncated"  # trl stopped the rollout (length or iteration cap)
            self._log.records.append(record)
        self._done = True
        return reward

    def _close(self) -> None:
        self._env.close()


def protocol_turns(completions: list[list[dict[str, Any]]], environments: list[McpToolEnv] | None = None,
                   **_: Any) -> list[float]:
    """trl reward function: the reward of each rollout's turns its environment never saw (see module)."""
    if environments is None:
        raise ValueError("protocol_turns needs trl's environments (pass environment_factory)")
    return [env._finish(messages) for messages, env in zip(completions, environments, strict=True)]


# --------------------------------------------------------------------------------------------------
# Tool sets, classes, dataset rows
# --------------------------------------------------------------------------------------------------


@dataclass
class Bridge:
    """The environment classes and factories, each task's tool set, and the log every environment shares."""

    factories: dict[str, Callable[[], McpToolEnv]]
    classes: dict[str, type[McpToolEnv]]
    offered: dict[str, tuple[str, ...]]  # task id -> its tools in the order MCPGymEnv offers them
    schemas: dict[tuple[str, ...], list[dict[str, Any]]]  # offered tools -> our compact schemas
    log: EpisodeLog
    pool: list[McpToolEnv]

    def environment(self, task: Task) -> str:
        return environment_name(self.offered[task.id])

    def close(self) -> None:
        for env in self.pool:
            env._close()
        self.pool.clear()


async def _offered_tools(tasks: Iterable[Task]) -> tuple[dict[str, tuple[str, ...]], dict[tuple[str, ...], list]]:
    """Each task's offered tools, as ``MCPGymEnv`` offers them, and each tool set's compact schemas."""
    hub = ToolHub([bundled_spec(name) for name in BUNDLED_SERVERS])
    await hub.start()
    try:
        offered: dict[str, tuple[str, ...]] = {}
        schemas: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for task in tasks:
            tools = tuple(task.tools) if task.tools else tuple(hub.tools_of(task.servers))
            offered[task.id] = tools
            if tools not in schemas:
                schemas[tools] = hub.schemas(tools, compact=True)
        return offered, schemas
    finally:
        await hub.close()


def environment_name(offered: Iterable[str]) -> str:
    """The factory key of a tool set: sorted, since trl lists an environment's tools alphabetically."""
    return "+".join(sorted(offered))


def environment_class(name: str, offered: tuple[str, ...], tool_schemas: list[dict[str, Any]]) -> type[McpToolEnv]:
    """A subclass of ``McpToolEnv`` with one generated method per tool of ``offered``."""
    clash = RESERVED_NAMES.intersection(offered) | {tool for tool in offered if tool.startswith("_")}
    if clash:
        raise ValueError(f"tool(s) {', '.join(sorted(clash))} cannot be trl environment methods (reserved names)")
    namespace: dict[str, Any] = {schema["function"]["name"]: tool_method(schema) for schema in tool_schemas}
    namespace["tool_names"] = tuple(offered)
    return type(f"mcp[{name}]", (McpToolEnv,), namespace)


def build_bridge(tasks: Sequence[Task], settings: EnvSettings) -> Bridge:
    """One environment class (and factory) per distinct tool set of ``tasks``."""
    offered, schemas = shared_loop().run(_offered_tools(tasks))
    log, pool = EpisodeLog(), []
    classes: dict[str, type[McpToolEnv]] = {}
    for tools, tool_schemas in schemas.items():
        name = environment_name(tools)
        if name not in classes:
            classes[name] = environment_class(name, tools, tool_schemas)
    factories = {name: (lambda cls=cls: cls(settings, log, pool)) for name, cls in classes.items()}
    return Bridge(factories, classes, offered, schemas, log, pool)


def prompt_messages(task: Task) -> list[dict[str, str]]:
    """The opening chat of ``MCPGymEnv`` (its system prompt and the instruction)."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": task.instruction}]


def dataset_rows(bridge: Bridge, tasks: Sequence[Task], seeds: Sequence[int]) -> list[dict[str, Any]]:
    """trl dataset rows: the prompt, the environment that offers the task's tools, the task for ``reset``."""
    return [{"prompt": prompt_messages(task), "environment": bridge.environment(task),
             "task": json.dumps(task.to_dict()), "seed": seed} for task, seed in zip(tasks, seeds, strict=True)]


def training_tasks(suite: str, split: str, seeds: Sequence[int], task_file: str | None = None) -> list[Task]:
    """The task each seed draws, exactly as ``MCPGymEnv.reset(seed=...)`` draws it (``trainer.env.draw_task``)."""
    pool = load_task_file(task_file) if task_file is not None else None
    return [draw_task(suite, split, seed, pool) for seed in seeds]


# --------------------------------------------------------------------------------------------------
# Checks: does trl's side see the text our side sees?
# --------------------------------------------------------------------------------------------------


class TrlToolsTokenizer:
    """Our tokenizer, except that tool lists render as trl renders them (its schemas, alphabetical).

    With it, ``trainer.evaluation.evaluate`` measures how the untrained model does on the prompts
    trl trains on, which is the handicap trl starts from.
    """

    def __init__(self, tokenizer: Any, methods: dict[str, Callable[..., str]]) -> None:
        self._tokenizer = tokenizer
        self._methods = methods

    def apply_chat_template(self, messages: Any, tools: list[dict[str, Any]] | None = None, **kwargs: Any) -> Any:
        from transformers.utils import chat_template_utils

        if tools:
            names = sorted(tool["function"]["name"] for tool in tools)
            tools = [chat_template_utils.get_json_schema(self._methods[name]) for name in names]
        return self._tokenizer.apply_chat_template(messages, tools=tools, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)


def trl_prompt_policy(policy: Any, bridge: Bridge) -> Any:
    """``policy`` with a tokenizer that renders tools the way trl's side does."""
    methods = {name: getattr(cls, name) for cls in bridge.classes.values() for name in cls.tool_names}
    return dataclasses.replace(policy, tokenizer=TrlToolsTokenizer(policy.tokenizer, methods))


def render_checks(trainer: Any, policy: Any, bridge: Bridge, tasks: Sequence[Task]) -> dict[str, Any]:
    """Compare trl's renderings with the ones our environment gives the model, on ``tasks``.

    - ``template_identical_share``: our environment's opening messages and tool schemas rendered by
      trl's template (the training variant it swaps in) against our rendering: the templates agree;
    - ``prompt_identical_share``: the prompt trl really renders (its tool schemas, its tool order)
      against ours, with the mean token counts of both;
    - ``tool_suffix_identical``: the tokens trl appends after a tool call against ours.
    """
    from trainer.conversation import turn_suffix

    ours_tok, trl_tok = policy.tokenizer, trainer.processing_class
    kwargs = dict(trainer.chat_template_kwargs)

    def ours(messages: list, tools: list | None = None, add_generation_prompt: bool = True, **_: Any) -> str:
        return ours_tok.apply_chat_template(messages, tools=tools, tokenize=False,
                                            add_generation_prompt=add_generation_prompt, enable_thinking=policy.thinking)

    def trl(messages: list, tools: list | None) -> str:
        return trl_tok.apply_chat_template(messages, tools=tools, chat_template=trainer.chat_template,
                                           add_generation_prompt=True, tokenize=False, **kwargs)

    def trl_tools(task: Task) -> list:
        """The tools trl renders for ``task``'s environment (its own list when it exposes one)."""
        name = bridge.environment(task)
        cls = bridge.classes[name]
        return getattr(trainer, "_env_tools", {}).get(name) or [getattr(cls, tool) for tool in sorted(cls.tool_names)]

    same_template = same_prompt = ours_tokens = trl_tokens = 0
    env = MCPGymEnv()
    try:
        for task in tasks:
            observation, _ = env.reset(options={"task": task})
            messages, tools = observation["messages"], observation["tools"]
            text = ours(messages, tools)
            same_template += trl(messages, tools) == text
            trl_text = trl(prompt_messages(task), trl_tools(task))
            same_prompt += trl_text == text
            ours_tokens += len(ours_tok.encode(text, add_special_tokens=False))
            trl_tokens += len(ours_tok.encode(trl_text, add_special_tokens=False))
    finally:
        env.close()
    n = max(1, len(tasks))
    suffix = None
    if hasattr(trainer, "_get_tool_suffix_ids"):
        trl_suffix = trainer._get_tool_suffix_ids([{"role": "tool", "name": "calculate", "content": "RESULT"}])
        our_suffix = ours_tok.encode(turn_suffix(ours, ["RESULT"], enable_thinking=policy.thinking),
                                     add_special_tokens=False)
        suffix = list(trl_suffix) == our_suffix
    return {"template_identical_share": round(same_template / n, 4), "prompt_identical_share": round(same_prompt / n, 4),
            "prompt_tokens_mean": {"ours": round(ours_tokens / n, 1), "trl": round(trl_tokens / n, 1)},
            "tool_suffix_identical": suffix, "checked_prompts": len(tasks)}
