"""Where smartfocus keeps its own files (analysis cache, ultralytics settings, downloaded weights)."""

import os
from pathlib import Path


def smartfocus_home() -> Path:
    """The data folder: `$SMARTFOCUS_HOME`, else `$XDG_CACHE_HOME/smartfocus`, else `~/.cache/smartfocus`."""
    if explicit := os.environ.get("SMARTFOCUS_HOME"):
        return Path(explicit).expanduser()
    cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_root).expanduser() / "smartfocus"
