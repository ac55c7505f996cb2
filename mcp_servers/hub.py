"""ToolHub: one MCP client session per server, bundled or external, behind one tool namespace.

The hub is asyncio code and must be used from one event loop (the trainer runs that loop in a
background thread, see ``trainer.loop``). Each server connection is owned by a task of its own, so
that the MCP client's task groups are entered and left in the same task however the hub is used.

Guarantees the environment builds on:
- a call never hangs: it is cut at ``call_timeout_s`` and comes back as an error result;
- a server that dies is restarted on the next call, and the failed call comes back as an error;
- ``reset`` gives stateful servers a fresh state (a new in-process instance, or a new process).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import mcp

from mcp_servers.registry import BUNDLED_SERVERS, build_bundled, stdio_command
from mcp_servers.tasks.model import ToolCall, ToolResult

Transport = Literal["inprocess", "stdio", "http"]


class HubError(RuntimeError):
    """A server that cannot be reached or a tool namespace that is ambiguous."""


class UnknownToolError(KeyError):
    """A call to a tool no connected server offers."""


@dataclass(frozen=True)
class ServerSpec:
    """How to reach one server: a bundled one in-process or over stdio, or an external one."""

    name: str
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    url: str | None = None
    bundled: bool = False
    module: str | None = None  # in-process: a Python module with build_server() (bundled: the registry's)

    def target(self) -> Any:
        """What ``mcp.Client`` connects to for this spec."""
        if self.transport == "inprocess":
            if self.module is not None:
                return importlib.import_module(self.module).build_server()
            return build_bundled(self.name)
        if self.transport == "stdio":
            assert self.command is not None
            return mcp.StdioServerParameters(command=self.command, args=list(self.args), env=self.env)
        assert self.url is not None
        return self.url


def bundled_spec(name: str, transport: Transport = "inprocess") -> ServerSpec:
    """The spec of a bundled server, in-process (fast) or as its own process over stdio."""
    if name not in BUNDLED_SERVERS:
        raise HubError(f"unknown server {name!r}; bundled servers: {', '.join(BUNDLED_SERVERS)}")
    if transport == "stdio":
        command, args = stdio_command(name)
        return ServerSpec(name, "stdio", command=command, args=tuple(args), bundled=True)
    return ServerSpec(name, "inprocess", bundled=True)


@dataclass(frozen=True)
class ToolInfo:
    """One tool as listed by its server."""

    name: str
    server: str
    description: str
    input_schema: dict[str, Any]

    def function_schema(self, compact: bool = False) -> dict[str, Any]:
        """The tool in the OpenAI function form that chat templates (Qwen3's included) render.

        ``compact`` drops schema titles and keeps the first paragraph of the description: what a
        model needs, in fewer prompt tokens.
        """
        description, parameters = self.description, self.input_schema
        if compact:
            description = description.strip().split("\n\n")[0].strip()
            parameters = compact_schema(parameters)
        return {"type": "function", "function": {"name": self.name, "description": description, "parameters": parameters}}


class _Connection:
    """One live client session, owned by its own task from open to close."""

    def __init__(self, spec: ServerSpec, connect_timeout_s: float) -> None:
        self.spec = spec
        self.connect_timeout_s = connect_timeout_s
        self.client: mcp.Client | None = None
        self._closing = asyncio.Event()
        self._ready = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done() and self.client is not None

    async def open(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"mcp-{self.spec.name}")
        try:
            await asyncio.wait_for(self._ready.wait(), self.connect_timeout_s)
        except TimeoutError:
            await self.close()
            raise HubError(
                f"server {self.spec.name!r} did not answer within {self.connect_timeout_s:g} s"
            ) from None
        if self._error is not None:
            raise HubError(f"cannot connect to server {self.spec.name!r}: {_one_line(self._error)}")

    async def _run(self) -> None:
        try:
            async with mcp.Client(self.spec.target()) as client:
                self.client = client
                self._ready.set()
                await self._closing.wait()
        except BaseException as exc:  # noqa: BLE001 - reported through `open` or the next call
            self._error = exc
        finally:
            self.client = None
            self._ready.set()

    async def close(self) -> None:
        self._closing.set()
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5.0)
            except (TimeoutError, Exception):
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task


@dataclass
class ToolHub:
    """Connections to several MCP servers, one flat tool namespace, bounded calls."""

    specs: list[ServerSpec]
    call_timeout_s: float = 5.0
    connect_timeout_s: float = 20.0
    max_result_chars: int = 4_000
    tools: dict[str, ToolInfo] = field(default_factory=dict)
    _connections: dict[str, _Connection] = field(default_factory=dict)

    async def __aenter__(self) -> ToolHub:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect every server and list its tools; a tool name offered twice is an error."""
        names = [spec.name for spec in self.specs]
        if len(set(names)) != len(names):
            raise HubError(f"server names must be unique: {', '.join(names)}")
        try:
            for spec in self.specs:
                await self._connect(spec)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for connection in list(self._connections.values()):
            await connection.close()
        self._connections.clear()

    async def _connect(self, spec: ServerSpec) -> None:
        connection = _Connection(spec, self.connect_timeout_s)
        await connection.open()
        self._connections[spec.name] = connection
        assert connection.client is not None
        listed = await asyncio.wait_for(connection.client.list_tools(), self.connect_timeout_s)
        for tool in listed.tools:
            owner = self.tools.get(tool.name)
            if owner is not None and owner.server != spec.name:
                raise HubError(f"tool {tool.name!r} is offered by both {owner.server!r} and {spec.name!r}")
            self.tools[tool.name] = ToolInfo(
                tool.name, spec.name, tool.description or "", dict(tool.input_schema)
            )

    async def add(self, spec: ServerSpec) -> None:
        """Connect one more server (a no-op when a server of that name is already connected)."""
        if spec.name in self._connections:
            return
        if all(s.name != spec.name for s in self.specs):
            self.specs.append(spec)
        await self._connect(spec)

    def is_connected(self, server: str) -> bool:
        return server in self._connections

    async def reset(self, servers: Iterable[str] | None = None) -> None:
        """Give servers a fresh state by reconnecting (in-process: a new instance; stdio: a new process)."""
        for name in list(servers if servers is not None else self._connections):
            connection = self._connections.pop(name, None)
            if connection is None:
                raise HubError(f"server {name!r} is not connected")
            await connection.close()
            await self._connect(connection.spec)

    def server_names(self) -> list[str]:
        return list(self._connections)

    def schemas(self, names: Iterable[str] | None = None, *, compact: bool = False) -> list[dict[str, Any]]:
        """Function schemas of the named tools (all tools when ``names`` is None), in the given order."""
        chosen = list(self.tools) if names is None else [name for name in names if name in self.tools]
        return [self.tools[name].function_schema(compact) for name in chosen]

    def tools_of(self, servers: Iterable[str]) -> list[str]:
        wanted = set(servers)
        return [name for name, info in self.tools.items() if info.server in wanted]

    async def call(self, call: ToolCall) -> ToolResult:
        """Run one call; timeouts and dead servers come back as error results, never exceptions.

        Raises ``UnknownToolError`` only for a tool no server offers (the caller decides what a
        hallucinated tool is worth).
        """
        info = self.tools.get(call.name)
        if info is None:
            raise UnknownToolError(call.name)
        connection = self._connections.get(info.server)
        start = time.perf_counter()
        if connection is None or not connection.alive:
            return await self._restart_and_fail(info.server, "was not running", start)
        assert connection.client is not None
        try:
            result = await asyncio.wait_for(
                connection.client.call_tool(call.name, call.arguments), self.call_timeout_s
            )
        except TimeoutError:
            return ToolResult(
                f"Error: tool {call.name!r} timed out after {self.call_timeout_s:g} s",
                is_error=True,
                latency_s=time.perf_counter() - start,
            )
        except Exception as exc:  # noqa: BLE001 - a transport failure means the server is gone
            return await self._restart_and_fail(info.server, f"failed ({_one_line(exc)})", start)
        text = "\n".join(_content_text(block) for block in result.content)
        if result.is_error:
            text = clean_error_text(text)
        if len(text) > self.max_result_chars:
            text = text[: self.max_result_chars] + " …[truncated]"
        return ToolResult(
            text=text,
            structured=result.structured_content,
            is_error=bool(result.is_error),
            latency_s=time.perf_counter() - start,
        )

    async def _restart_and_fail(self, server: str, what: str, start: float) -> ToolResult:
        connection = self._connections.pop(server, None)
        if connection is not None:
            await connection.close()
            spec = connection.spec
        else:
            spec = next(s for s in self.specs if s.name == server)
        note = "it was restarted"
        try:
            await self._connect(spec)
        except HubError as exc:
            note = f"restarting it failed: {exc}"
        return ToolResult(
            f"Error: server {server!r} {what}; {note}; retry the call",
            is_error=True,
            latency_s=time.perf_counter() - start,
        )


_PYDANTIC_NOISE = re.compile(r"\s*For further information visit https://errors\.pydantic\.dev/\S*")


def clean_error_text(text: str) -> str:
    """An argument-validation error as a model can read it: no documentation links, one space per gap."""
    text = _PYDANTIC_NOISE.sub("", text)
    return " ".join(text.split())


def compact_schema(schema: Any) -> Any:
    """A JSON schema without the ``title`` entries pydantic adds: same meaning, fewer prompt tokens."""
    if isinstance(schema, dict):
        return {k: compact_schema(v) for k, v in schema.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(schema, list):
        return [compact_schema(v) for v in schema]
    return schema


def _content_text(block: Any) -> str:
    text = getattr(block, "text", None)
    if isinstance(text, str):
        return text
    return f"[{getattr(block, 'type', 'content')}]"


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _one_line(exc.exceptions[0])
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message[:300]
