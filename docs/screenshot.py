"""Export the README's picture of the Live screen from the app itself.

    python docs/screenshot.py [RUN_DIR] [--out docs/live] [--size 160x45]

Opens the workbench headless on a run (default: a copy of the recorded test run), waits for its
turns, saves ``OUT.svg`` with ``App.save_screenshot`` and, where ``rsvg-convert`` is installed
(Debian: ``apt-get install librsvg2-bin``), ``OUT.png`` beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workbench.app import WorkbenchApp  # noqa: E402
from workbench.app.widgets.turn_table import TurnTable  # noqa: E402


async def capture(run_dir: Path, out: Path, size: tuple[int, int]) -> Path:
    app = WorkbenchApp(run_dir=run_dir)
    async with app.run_test(size=size) as pilot:
        for _ in range(200):
            await pilot.pause(0.05)
            table = app.screen.query_one(TurnTable)
            if table.row_count and app.feed is not None and app.feed.info is not None:
                break
        await pilot.pause(0.5)
        path = app.save_screenshot(filename=out.with_suffix(".svg").name, path=str(out.parent))
    return Path(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", type=Path, help="a run folder (default: the recorded test run)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "live")
    parser.add_argument("--size", default="160x45")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir
        if run_dir is None:
            run_dir = Path(tmp) / "small"
            shutil.copytree(REPO / "tests" / "data" / "recorded" / "small", run_dir)
        svg = asyncio.run(capture(run_dir, args.out, (width, height)))
    print(f"saved {svg}")
    if shutil.which("rsvg-convert"):
        png = svg.with_suffix(".png")
        subprocess.run(["rsvg-convert", "-w", str(width * 11), str(svg), "-o", str(png)], check=True)
        print(f"saved {png}")
    else:
        print("rsvg-convert not found (apt-get install librsvg2-bin): PNG not made")
    return 0


if __name__ == "__main__":
    sys.exit(main())
