"""Colours shared by the CLI and the app, so a status always looks the same."""

STATUS_STYLE = {
    "success": "bold green",
    "tool_execution": "cyan",
    "tool_error": "yellow",
    "invalid_json": "magenta",
    "structural_fail": "bold red",
}
