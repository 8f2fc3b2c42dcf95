"""Files and folders only their owner may read: the home folder, the SQLite database, the broker and blob cache.

The embedded database holds every user's token hashes, jobs and datasets, and the broker and
cache hold job ids and uploaded data, so other local users must not read them (red team #56
found the database 0644 and the cache 0755). Modes are set at creation, whatever the umask,
and tightened when the thing already exists from an earlier version.
"""

from __future__ import annotations

import os
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")  # SQLite gives new ones the database file's mode


def make_folders(path: Path) -> None:
    """Create `path` and its missing parents, each owner-only; folders that exist already are left as they are."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:  # another process made it first
            continue
        os.chmod(folder, FOLDER_MODE)  # the umask may have taken bits off, never added: this is exact


def _tighten(path: Path, mode: int) -> None:
    try:
        os.chmod(path, mode)
    except PermissionError:  # another user's (a shared setup): theirs to decide
        pass


def private_folder(path: Path) -> Path:
    """`path` (one of trainyard's own folders) exists and is owner-only (0700), as are the parents it created."""
    make_folders(path)
    _tighten(path, FOLDER_MODE)
    return path


def private_sqlite_file(path: Path) -> Path:
    """The SQLite database file exists and is owner-only (0600), before SQLite opens it; so are its WAL and
    shared-memory files, which SQLite creates with the database file's mode. Missing parents are made 0700."""
    make_folders(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT, FILE_MODE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_COMPANIONS)):
        if file.exists():
            _tighten(file, FILE_MODE)
    return path
