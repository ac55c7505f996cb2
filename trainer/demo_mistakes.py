"""The typical mistakes a bootstrap demonstration may make before its right call (see ``BootstrapRecipe``).

Each is a turn a small model really writes: a tool it invented, JSON it did not close, an argument
under a name the tool does not take. The environment answers them as it answers any turn, so a
demonstration that recovers shows the model the real error text it will have to read.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from mcp_servers.tasks.model import ToolCall
from trainer.conversation import tool_call_text

MISTAKE_KINDS = ("invented_tool", "broken_json", "misnamed_argument")
# names a model reaches for when it does not read the tool list: other servers' tools and invented ones
INVENTED_TOOLS = ("search", "fetch", "calculate", "arithmetic", "query", "load", "aggregate", "lookup",
                  "get_page", "run_sql", "compute", "python")
_ARGUMENT_ALIASES = {"expression": "expr", "query": "q", "id": "page_id", "sql": "statement", "dataset": "name",
                     "table": "table_name", "column": "field", "op": "operation", "value": "number",
                     "percent": "rate", "a": "x", "b": "y"}


def mistaken_call_text(call: ToolCall, offered: Sequence[str], rng: random.Random) -> str:
    """An assistant turn that tries ``call`` but gets it wrong in one of the ``MISTAKE_KINDS``."""
    kind = rng.choice(MISTAKE_KINDS)
    if kind == "invented_tool":
        return tool_call_text(rng.choice([n for n in INVENTED_TOOLS if n not in offered]), dict(call.arguments))
    if kind == "misnamed_argument" and call.arguments:
        key = rng.choice(sorted(call.arguments))
        alias = _ARGUMENT_ALIASES.get(key, f"{key}_value")
        return tool_call_text(call.name, {(alias if k == key else k): v for k, v in call.arguments.items()})
    text = tool_call_text(call.name, dict(call.arguments))
    cut = text.rfind("}")  # the object's closing brace: the JSON no longer parses
    return text[:cut] + text[cut + 1 :]
