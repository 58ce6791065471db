"""Where gnnformer reads data and writes caches."""
from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import DataError

#: Raw files shipped inside the package (MUTAG, Cora), laid out like a data root.
EMBEDDED_ROOT = Path(__file__).resolve().parent / "datasets" / "embedded"


def cache_dir() -> Path:
    """Processed datasets and cached encodings: ``$GNNFORMER_CACHE``, else ``~/.cache/gnnformer``.

    Created if missing; a folder that cannot be created or written is a `DataError` naming
    ``GNNFORMER_CACHE``, before any caller fails halfway through writing into it.
    """
    env = os.environ.get("GNNFORMER_CACHE")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "gnnformer"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise unwritable_cache(path, err) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise unwritable_cache(path, PermissionError(errno.EACCES, os.strerror(errno.EACCES)))
    return path


def unwritable_cache(folder: Path, err: OSError) -> DataError:
    """The error for a cache folder that cannot be created or written: names the way out."""
    return DataError(
        f"The cache folder {folder} cannot be written ({err.strerror or err}). "
        "Set GNNFORMER_CACHE to a writable folder to keep the cache there instead."
    )
