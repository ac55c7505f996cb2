"""Data shipped with qwen-workbench: the tiny model, the search corpus, the shop database, data sets.

Installed as the package ``qwen_workbench_assets``; locate files with ``mcp_servers.assets.asset_path``.
"""
