"""`qwen-workbench tools list|call`: inspect and call the MCP servers from the shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from mcp_servers.config import ConfigError, server_specs
from mcp_servers.hub import HubError, ToolHub, UnknownToolError
from mcp_servers.tasks.model import ToolCall
from workbench.commands.exits import EXIT_OK, EXIT_TOOL_ERROR, EXIT_UNREACHABLE, EXIT_USAGE, fail


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    tools = subparsers.add_parser("tools", help="list the MCP servers' tools or call one")
    actions = tools.add_subparsers(dest="tools_command", required=True)
    listing = actions.add_parser("list", help="servers and their tools with JSON schemas")
    listing.add_argument("--server", action="append", help="only this server (repeatable)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    _common(listing)
    listing.set_defaults(run=run_list)
    call = actions.add_parser("call", help="call one tool and print its result")
    call.add_argument("server")
    call.add_argument("tool")
    call.add_argument("arguments", nargs="?", default="{}", help="JSON object of arguments")
    call.add_argument("--json", action="store_true", help="print the full result as JSON")
    _common(call)
    call.set_defaults(run=run_call)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--servers-config", help="an mcpServers JSON file adding external servers")
    parser.add_argument(
        "--transport",
        choices=["inprocess", "stdio"],
        default="inprocess",
        help="how to run the bundled servers",
    )


def run_list(args: argparse.Namespace) -> int:
    try:
        specs = server_specs(args.server, config_path=args.servers_config, transport=args.transport)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)

    async def listing() -> dict[str, list[dict]]:
        async with ToolHub(specs) as hub:
            by_server: dict[str, list[dict]] = {name: [] for name in hub.server_names()}
            for info in hub.tools.values():
                by_server[info.server].append(
                    {"name": info.name, "description": info.description, "input_schema": info.input_schema}
                )
            return by_server

    try:
        by_server = asyncio.run(listing())
    except HubError as exc:
        return fail(str(exc), EXIT_UNREACHABLE)
    if args.json:
        print(json.dumps(by_server, indent=2))
        return EXIT_OK
    for server, tools in by_server.items():
        print(f"{server}")
        for tool in tools:
            print(f"  {tool['name']}({_signature(tool['input_schema'])})")
            if tool["description"]:
                print(f"      {tool['description'].splitlines()[0]}")
    return EXIT_OK


def _signature(schema: dict) -> str:
    required = set(schema.get("required", []))
    parts = []
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type") or "/".join(p.get("type", "?") for p in prop.get("anyOf", [])) or "any"
        parts.append(f"{name}: {kind}" + ("" if name in required else "?"))
    return ", ".join(parts)


def run_call(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.arguments)
    except (ValueError, RecursionError) as exc:
        return fail(f"arguments are not valid JSON: {exc}", EXIT_USAGE)
    if not isinstance(arguments, dict):
        return fail("arguments must be a JSON object, e.g. '{\"a\": 1}'", EXIT_USAGE)
    try:
        specs = server_specs([args.server], config_path=args.servers_config, transport=args.transport)
    except ConfigError as exc:
        return fail(str(exc), EXIT_USAGE)

    async def calling():
        async with ToolHub(specs) as hub:
            return await hub.call(ToolCall(args.tool, arguments)), sorted(hub.tools)

    try:
        result, names = asyncio.run(calling())
    except HubError as exc:
        return fail(str(exc), EXIT_UNREACHABLE)
    except UnknownToolError:
        return fail(f"server {args.server!r} has no tool {args.tool!r}", EXIT_USAGE)
    if args.json:
        print(
            json.dumps(
                {
                    "is_error": result.is_error,
                    "text": result.text,
                    "structured": result.structured,
                    "latency_s": round(result.latency_s, 4),
                },
                indent=2,
            )
        )
    else:
        print(result.text, file=sys.stderr if result.is_error else sys.stdout)
    return EXIT_TOOL_ERROR if result.is_error else EXIT_OK
