"""CLI parsers for episode forensics and curation (rerun, compare, flag, promote, export, report)."""

from __future__ import annotations

import argparse


def add_forensics_parsers(commands: argparse._SubParsersAction) -> None:
    """Register the forensics subcommands (filled in by the forensics issue)."""
