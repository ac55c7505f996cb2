"""A chat reply streams while the policy writes: generation steps, the trainer's chat, the client."""

from __future__ import annotations

import pytest

from trainer.chat import TurnStreamer, chat_turns
from trainer.generation import generate_batch
from trainer.model_loading import load_policy
from trainer.store import Command
from workbench.chat_client import streamed_text


@pytest.fixture(scope="module")
def policy(throwaway_model):
    return load_policy(str(throwaway_model), device="cpu", lora=None)


def test_every_decoding_step_can_report_the_text_so_far(policy):
    tokenizer = policy.tokenizer
    prompt = tokenizer.encode("<|im_start|>user\nAdd 2 and 3.<|im_end|>\n<|im_start|>assistant\n",
                              add_special_tokens=False)
    events: list[dict] = []
    (sample,) = generate_batch(policy.model, tokenizer, [prompt], max_new_tokens=10, greedy=True,
                               on_step=TurnStreamer(tokenizer, 3, events.append, every_s=0.0))
    assert len(events) == len(sample.token_ids), "one report per generated token"
    assert {event["turn"] for event in events} == {3}
    full = tokenizer.decode(sample.token_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert events[-1]["text"] == full
    (silent,) = generate_batch(policy.model, tokenizer, [prompt], max_new_tokens=10, greedy=True)
    assert silent.token_ids == sample.token_ids, "reporting does not change what is generated"


def test_chat_reports_each_turn_and_ends_it_with_its_full_text(policy):
    events: list[dict] = []
    result = chat_turns(policy, {"messages": [{"role": "user", "content": "Add 2 and 3."}], "servers": ["math"],
                                 "max_calls": 2, "max_new_tokens": 16}, progress=events.append)
    last_per_turn: dict[int, str] = {}
    for event in events:
        last_per_turn[event["turn"]] = event["text"]
    assert last_per_turn == {i: turn["raw_text"] for i, turn in enumerate(result["turns"])}


def _command(status: str, result) -> Command:
    return Command(1, "chat", {}, 0.0, status, result, None, None)


def test_the_client_reads_partial_text_only_from_a_running_command():
    assert streamed_text(_command("running", {"partial": {"turn": 1, "text": "<tool_call>"}})) == (1, "<tool_call>")
    assert streamed_text(_command("running", None)) is None
    assert streamed_text(_command("running", {"partial": {"turn": "x", "text": "a"}})) == (0, "a")
    assert streamed_text(_command("running", {"partial": {"text": 5}})) is None, "hostile store rows are ignored"
    assert streamed_text(_command("done", {"partial": {"turn": 0, "text": "a"}})) is None
