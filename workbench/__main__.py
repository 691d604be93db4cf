"""``python -m workbench`` == ``workbench``."""

from workbench.cli import main

main()
