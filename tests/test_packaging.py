"""The distribution: every package listed, and a plain (non-editable) install finds every asset."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile

import pytest

from tests.conftest import REPO

PACKAGE_ROOTS = ("mcp_servers", "trainer", "workbench")


def test_every_python_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.parent.relative_to(REPO).parts)
        for root in PACKAGE_ROOTS
        for path in (REPO / root).rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert found <= listed, f"add to [tool.setuptools].packages: {sorted(found - listed)}"
    assert "qwen_workbench_assets" in listed


@pytest.mark.slow
def test_a_built_wheel_carries_every_asset_and_installs_without_the_source(tmp_path):
    wheel_dir = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheel_dir), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next(wheel_dir.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [p for p in (REPO / "assets").rglob("*") if p.is_file() and "__pycache__" not in p.parts
               and p.suffix not in (".py", ".pyc")]
    missing = [str(p.relative_to(REPO)) for p in shipped
               if f"qwen_workbench_assets/{p.relative_to(REPO / 'assets').as_posix()}" not in names]
    assert not missing, f"assets missing from the wheel: {missing}"
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    probe = (
        "from mcp_servers.assets import asset_path, assets_dir;"
        "import mcp_servers, sys;"
        f"assert mcp_servers.__file__.startswith({str(target)!r}), mcp_servers.__file__;"
        f"assert str(assets_dir()).startswith({str(target)!r}), assets_dir();"
        "assert asset_path('shop.db').is_file() and asset_path('search', 'corpus.jsonl').is_file();"
        "from trainer.chat_format import render_chat; render_chat([{'role': 'user', 'content': 'x'}])"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
