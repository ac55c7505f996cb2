"""The bundled servers by name, and how to build or launch each one."""

from __future__ import annotations

import importlib
import sys

from mcp.server.mcpserver import MCPServer

BUNDLED_SERVERS: dict[str, str] = {
    "math": "mcp_servers.math",
    "search": "mcp_servers.search",
    "database": "mcp_servers.database",
    "data": "mcp_servers.data",
}


def build_bundled(name: str) -> MCPServer:
    """A fresh in-process instance of a bundled server (fresh state, nothing shared)."""
    if name not in BUNDLED_SERVERS:
        raise KeyError(f"unknown bundled server {name!r}; bundled: {', '.join(BUNDLED_SERVERS)}")
    return importlib.import_module(BUNDLED_SERVERS[name]).build_server()


def stdio_command(name: str) -> tuple[str, list[str]]:
    """The command that runs a bundled server as its own process over stdio."""
    if name not in BUNDLED_SERVERS:
        raise KeyError(f"unknown bundled server {name!r}; bundled: {', '.join(BUNDLED_SERVERS)}")
    return sys.executable, ["-m", BUNDLED_SERVERS[name]]
