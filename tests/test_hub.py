"""ToolHub against a real external stdio server: listing, calls, timeouts, a killed server."""

from __future__ import annotations

import pytest

from mcp_servers.config import server_specs
from mcp_servers.hub import HubError, ServerSpec, ToolHub, UnknownToolError
from mcp_servers.tasks.model import ToolCall


async def test_external_stdio_server_from_config(flaky_config):
    async with ToolHub(server_specs(["flaky"], config_path=flaky_config), call_timeout_s=1.0) as hub:
        assert {"echo", "nap", "die", "pid"} <= set(hub.tools)
        assert hub.tools["echo"].server == "flaky"
        schema = hub.schemas(["echo"])[0]["function"]
        assert schema["name"] == "echo" and "text" in schema["parameters"]["properties"]
        result = await hub.call(ToolCall("echo", {"text": "hi"}))
        assert not result.is_error and result.value() == "hi"
        bad = await hub.call(ToolCall("echo", {}))
        assert bad.is_error and "text" in bad.text
        with pytest.raises(UnknownToolError):
            await hub.call(ToolCall("nope", {}))


async def test_a_hanging_call_is_cut_and_the_server_still_answers(flaky_config):
    async with ToolHub(server_specs(["flaky"], config_path=flaky_config), call_timeout_s=0.5) as hub:
        result = await hub.call(ToolCall("nap", {"seconds": 30}))
        assert result.is_error and "timed out" in result.text
        assert result.latency_s < 5
        assert (await hub.call(ToolCall("echo", {"text": "still here"}))).text == "still here"


async def test_a_killed_server_is_restarted(flaky_config):
    async with ToolHub(server_specs(["flaky"], config_path=flaky_config), call_timeout_s=3.0) as hub:
        first = (await hub.call(ToolCall("pid", {}))).value()
        died = await hub.call(ToolCall("die", {}))
        assert died.is_error and "restarted" in died.text
        second = (await hub.call(ToolCall("pid", {}))).value()
        assert isinstance(second, int) and second != first


async def test_reset_gives_a_new_process(flaky_config):
    async with ToolHub(server_specs(["flaky"], config_path=flaky_config)) as hub:
        first = (await hub.call(ToolCall("pid", {}))).value()
        await hub.reset(["flaky"])
        assert (await hub.call(ToolCall("pid", {}))).value() != first


async def test_unreachable_servers_fail_clearly():
    spec = ServerSpec("ghost", "stdio", command="/nonexistent/binary")
    with pytest.raises(HubError, match="ghost"):
        await ToolHub([spec], connect_timeout_s=5).start()
    http = ServerSpec("remote", "http", url="http://127.0.0.1:9/mcp")
    with pytest.raises(HubError, match="remote"):
        await ToolHub([http], connect_timeout_s=5).start()


async def test_duplicate_tool_names_are_refused(flaky_config, tmp_path):
    import json

    config = json.loads(flaky_config.read_text())
    config["mcpServers"]["flaky2"] = config["mcpServers"]["flaky"]
    path = tmp_path / "two.json"
    path.write_text(json.dumps(config))
    with pytest.raises(HubError, match="offered by both"):
        await ToolHub(server_specs(None, config_path=path)[-2:]).start()
