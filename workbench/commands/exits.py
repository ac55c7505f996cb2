"""Exit codes scripts can rely on, and the one-line error printer."""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_TOOL_ERROR = 1  # the command ran; the tool (or a verification) reported a failure
EXIT_USAGE = 2  # bad arguments, unknown server/tool/suite, unreadable file
EXIT_UNREACHABLE = 3  # a server or model could not be reached


def fail(message: str, code: int) -> int:
    """Print ``error: message`` on one line to stderr and return ``code``."""
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code
