"""Shared fixtures: external server configs and small helpers used across the suite."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def flaky_config(tmp_path: Path) -> Path:
    """An mcpServers config that adds the test's flaky server over stdio."""
    config = {
        "mcpServers": {
            "flaky": {
                "command": sys.executable,
                "args": ["-m", "tests.servers.flaky_server"],
                "env": {"PYTHONPATH": str(REPO)},
            }
        }
    }
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture
def flaky_inprocess_config(tmp_path: Path) -> Path:
    """The same flaky server loaded in-process through the config's ``module`` form (fast)."""
    path = tmp_path / "servers-inprocess.json"
    path.write_text(json.dumps({"mcpServers": {"flaky": {"module": "tests.servers.flaky_server"}}}))
    return path
