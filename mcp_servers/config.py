"""External MCP servers from a config file in the ``mcpServers`` JSON form MCP clients share.

```json
{"mcpServers": {
    "weather": {"command": "python", "args": ["-m", "weather_server"], "env": {"UNITS": "metric"}},
    "remote":  {"url": "http://127.0.0.1:8000/mcp"}
}}
```

A ``command`` entry runs over stdio; a ``url`` entry uses streamable HTTP. An extension of ours,
``{"module": "my_pkg.my_server"}``, loads a Python module's ``build_server()`` in-process: the
fastest transport for servers written with the MCP Python SDK. The file is hostile
until checked: every field is validated and a bad one is named in a one-line ``ConfigError``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mcp_servers.hub import ServerSpec
from mcp_servers.registry import BUNDLED_SERVERS

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_CONFIG_BYTES = 1_000_000


class ConfigError(ValueError):
    """A server config file that cannot be used, with the reason on one line."""


def load_server_config(path: str | Path) -> list[ServerSpec]:
    """Read and validate an ``mcpServers`` config file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read server config {path}: {exc.strerror or exc}") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"server config {path} is larger than {_MAX_CONFIG_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"server config {path} is not valid JSON: {exc}") from None
    return parse_server_config(data, source=str(path))


def parse_server_config(data: Any, source: str = "config") -> list[ServerSpec]:
    """Validate the decoded JSON of an ``mcpServers`` config."""
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise ConfigError(f"{source}: expected an object with an 'mcpServers' object")
    specs = []
    for name, entry in data["mcpServers"].items():
        specs.append(_parse_entry(name, entry, source))
    return specs


def _parse_entry(name: str, entry: Any, source: str) -> ServerSpec:
    where = f"{source}: server {name!r}"
    if not _NAME.match(name):
        raise ConfigError(f"{where}: names use letters, digits, '_' and '-' (at most 64)")
    if name in BUNDLED_SERVERS:
        raise ConfigError(f"{where}: the name is taken by a bundled server; choose another")
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected an object with 'command' or 'url'")
    if sum(key in entry for key in ("command", "url", "module")) != 1:
        raise ConfigError(
            f"{where}: give exactly one of 'command' (stdio), 'url' (HTTP) or 'module' (in-process)"
        )
    unknown = set(entry) - {"command", "args", "env", "url", "type", "cwd", "module"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    if "module" in entry:
        module = entry["module"]
        if not isinstance(module, str) or not re.match(
            r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$", module
        ):
            raise ConfigError(f"{where}: 'module' must be a dotted Python module name")
        return ServerSpec(name, "inprocess", module=module)
    if "url" in entry:
        url = entry["url"]
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise ConfigError(f"{where}: 'url' must be an http(s) URL")
        return ServerSpec(name, "http", url=url)
    command = entry["command"]
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f"{where}: 'command' must be a non-empty string")
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f"{where}: 'args' must be a list of strings")
    env = entry.get("env")
    if env is not None and (
        not isinstance(env, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise ConfigError(f"{where}: 'env' must map strings to strings")
    return ServerSpec(name, "stdio", command=command, args=tuple(args), env=env)


def server_specs(
    names: list[str] | None = None,
    *,
    config_path: str | Path | None = None,
    transport: str = "inprocess",
) -> list[ServerSpec]:
    """The specs for ``names`` (every bundled and configured server when None).

    Bundled servers use ``transport`` ("inprocess" or "stdio"); configured ones use their own.
    """
    from mcp_servers.hub import bundled_spec

    if transport not in ("inprocess", "stdio"):
        raise ConfigError(f"unknown transport {transport!r} for bundled servers; use inprocess or stdio")
    external = {spec.name: spec for spec in load_server_config(config_path)} if config_path else {}
    available = [*BUNDLED_SERVERS, *external]
    wanted = names if names is not None else available
    specs = []
    for name in wanted:
        if name in external:
            specs.append(external[name])
        elif name in BUNDLED_SERVERS:
            specs.append(bundled_spec(name, transport))  # type: ignore[arg-type]
        else:
            raise ConfigError(f"unknown server {name!r}; available: {', '.join(available)}")
    return specs
