"""A third-party-style MCP server for tests: it echoes, sleeps past timeouts, and can die.

It stands in for an external server a user adds through a config file; it is a real MCP server
over stdio, not a mock of project code.
"""

from __future__ import annotations

import os
import time

from mcp.server.mcpserver import MCPServer


def build_server() -> MCPServer:
    server = MCPServer("flaky", log_level="WARNING")
    memory: list[str] = []  # per-instance state: a fresh instance remembers nothing

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def nap(seconds: float) -> str:
        """Sleep, then answer (used to exceed the caller's timeout)."""
        time.sleep(min(seconds, 60.0))
        return "awake"

    @server.tool()
    def die() -> str:
        """Kill this server process."""
        os._exit(3)

    @server.tool()
    def remember(text: str) -> int:
        """Store a note in this server instance; returns how many notes it holds."""
        memory.append(text)
        return len(memory)

    @server.tool()
    def recall() -> list[str]:
        """The notes this server instance holds."""
        return list(memory)

    @server.tool()
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    return server


if __name__ == "__main__":
    build_server().run()
