"""Parallel rollouts: many environments in lock-step, each round of generation batched.

Every round, the policy generates one assistant turn for every episode still running, in one
left-padded batch; each environment then executes its turn against the MCP servers. The token ids
and log-probs kept for PPO are the ones from that sampling pass.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trainer.config import RolloutConfig
from trainer.conversation import TokenStream, template_renderer, turn_suffix
from trainer.env import MCPGymEnv
from trainer.generation import generate_batch
from trainer.records import EpisodeRecord


@dataclass(frozen=True)
class SamplingSettings:
    """How turns are sampled during a rollout."""

    max_new_tokens: int = RolloutConfig.max_new_tokens
    temperature: float = 1.0
    top_p: float = 1.0
    greedy: bool = False
    max_context_tokens: int = 2048


@dataclass
class EpisodeRollout:
    """One played episode: its record, its token stream, and per-token log-probs of its actions."""

    record: EpisodeRecord
    stream: TokenStream
    logprobs: list[float] = field(default_factory=list)  # aligned with stream.token_ids (0 on observations)
    turn_rewards: list[float] = field(default_factory=list)  # one per assistant turn
    generated_tokens: int = 0


@dataclass
class RolloutStats:
    episodes: int
    generated_tokens: int
    generation_s: float
    environment_s: float
    wall_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.generated_tokens / self.generation_s if self.generation_s > 0 else 0.0


def play_episodes(
    policy: Any,
    envs: Sequence[MCPGymEnv],
    seeds: Sequence[int],
    settings: SamplingSettings,
    *,
    generation_seed: int = 0,
    tasks: Sequence[Any] | None = None,
) -> tuple[list[EpisodeRollout], RolloutStats]:
    """Play one episode per environment (``seeds[i]`` draws env i's task, or ``tasks[i]`` is played)."""
    started = time.perf_counter()
    render = template_renderer(policy.tokenizer, thinking=policy.thinking)
    encode = _encoder(policy.tokenizer)
    rollouts: list[EpisodeRollout] = []
    for index, (env, seed) in enumerate(zip(envs, seeds, strict=True)):
        options = {"task": tasks[index]} if tasks is not None else None
        observation, _ = env.reset(seed=seed, options=options)
        stream = TokenStream()
        stream.observe(encode(render(observation["messages"], observation["tools"], add_generation_prompt=True)))
        rollouts.append(EpisodeRollout(record=env.record, stream=stream, logprobs=[0.0] * len(stream)))
    running = list(range(len(envs)))
    generation_s = environment_s = 0.0
    generated = 0
    round_index = 0
    while running:
        prompts = [rollouts[i].stream.token_ids for i in running]
        tick = time.perf_counter()
        samples = generate_batch(
            policy.model,
            policy.tokenizer,
            prompts,
            max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            seed=generation_seed * 100_003 + round_index,
            greedy=settings.greedy,
        )
        generation_s += time.perf_counter() - tick
        round_index += 1
        tick = time.perf_counter()
        still_running = []
        for i, sample in zip(running, samples, strict=True):
            rollout = rollouts[i]
            rollout.stream.act(sample.token_ids)
            rollout.logprobs.extend(sample.logprobs)
            rollout.generated_tokens += len(sample.token_ids)
            generated += len(sample.token_ids)
            _, reward, terminated, truncated, info = envs[i].step(sample.text)
            rollout.turn_rewards.append(reward)
            if terminated or truncated:
                rollout.record = envs[i].record
                continue
            suffix = encode(turn_suffix(render, tool_texts(info), enable_thinking=policy.thinking))
            if len(rollout.stream) + len(suffix) + settings.max_new_tokens > settings.max_context_tokens:
                envs[i].record.outcome = "truncated"
                rollout.record = envs[i].record
                continue
            rollout.stream.observe(suffix)
            rollout.logprobs.extend([0.0] * len(suffix))
            still_running.append(i)
        environment_s += time.perf_counter() - tick
        running = still_running
    stats = RolloutStats(len(envs), generated, generation_s, environment_s, time.perf_counter() - started)
    return rollouts, stats


def tool_texts(info: dict[str, Any]) -> list[str]:
    """The tool messages the environment fed back this turn, in order."""
    if info["calls"]:
        return [call["response"] for call in info["calls"]]
    return [info["feedback"]]


def _encoder(tokenizer: Any):
    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    return encode
