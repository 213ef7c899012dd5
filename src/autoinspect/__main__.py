"""Allows ``python -m autoinspect``."""

from autoinspect.cli import main

main()
