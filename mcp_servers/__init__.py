"""MCP tool servers (math, search, database, data) and the task suites that exercise them.

Each bundled server lives in its own module with a ``build_server()`` factory and runs as its own
process with ``python -m mcp_servers.<name>``. Nothing here imports ``trainer`` or ``workbench``.
"""
