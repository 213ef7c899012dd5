"""Files and folders that hold secrets or personal data (API key hashes, vehicle ids, reviews, the UI's key):
readable by their owner only, whatever the umask.

Modes are set when a file or folder is created here, so a program that opens the file next (SQLite, MLflow's
SQLite store) keeps that mode for it and for the journals it creates beside it. Existing files keep the mode
their owner gave them.
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """``path``, created (with missing parents) as an owner-only folder when it does not exist yet."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(PRIVATE_DIR)
    return path


def private_file(path: Path) -> Path:
    """``path``, created empty and owner-only when it does not exist yet (an empty file is a new SQLite database)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
    return path


def write_private(path: Path, text: str) -> None:
    """Replace ``path``'s content with ``text``, owner-only even when an older file had a wider mode."""
    private_file(path).chmod(PRIVATE_FILE)
    path.write_text(text, encoding="utf-8")
