"""The Textual workbench and the ``qwen-workbench`` command line. Never imports torch."""
