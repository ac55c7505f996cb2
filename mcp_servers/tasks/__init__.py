"""Tasks: instructions, the tools they may use, oracle calls, and declarative verifiers."""

from mcp_servers.tasks.model import Task, ToolCall, ToolResult, Verifier

__all__ = ["Task", "ToolCall", "ToolResult", "Verifier"]
