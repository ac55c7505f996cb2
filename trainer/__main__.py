"""``python -m trainer CMD``: the commands that need PyTorch (``qwen-workbench`` hands them over)."""

from __future__ import annotations

import sys

from trainer.cli import main

sys.exit(main())
