"""Where raw files come from, how they are staged for PyG, and the one error for missing data.

PyG writes ``processed/`` next to ``raw/``. To keep the data root (and the package) read-only,
raw files are linked into ``cache_dir()/datasets/<Name>-<hash>/`` and PyG is pointed there; the
hash covers the raw bytes, so edited raw files get a fresh folder instead of a stale cache.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from ..errors import DataError
from ..paths import EMBEDDED_ROOT, cache_dir
from .validate import UTF8_BOM

T = TypeVar("T")

#: Bump when the staged layout or gnnformer's post-processing changes, to orphan old caches.
STAGE_VERSION = "1"
#: Seconds a download may wait to connect or between reads before it counts as failed
#: (override with $GNNFORMER_DOWNLOAD_TIMEOUT).
DOWNLOAD_STALL_TIMEOUT = 30.0

ORIGINS = {
    "flag": "from --data-root",
    "env": "from $GNNFORMER_DATA",
    "embedded": "the built-in default; neither --data-root nor GNNFORMER_DATA was given",
}


def resolve_data_root(data_root: str | os.PathLike | None) -> tuple[Path, str]:
    """``(root, origin)``: the --data-root flag if given, else $GNNFORMER_DATA, else the embedded root."""
    env = os.environ.get("GNNFORMER_DATA", "")
    if data_root is not None and str(data_root) != "":
        root, origin = Path(data_root).expanduser(), "flag"
    elif env.strip():
        root, origin = Path(env.strip()).expanduser(), "env"
    else:
        return EMBEDDED_ROOT, "embedded"
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        raise DataError(
            f"Data root {root} ({ORIGINS[origin]}) {what}.\n"
            "Fix: pass --data-root (or set GNNFORMER_DATA) to a folder laid out as "
            "<root>/TU/<NAME>/raw, <root>/Planetoid/<Name>/raw or <root>/MoleculeNet/<name>/raw, "
            "or leave both unset to use the built-in MUTAG, Cora and chickenpox.")
    return root.resolve(), origin


def describe_root(root: Path, origin: str) -> str:
    return f"{root} ({ORIGINS.get(origin, origin)})"


def find_child(parent: Path, name: str, want_dir: bool = True) -> Path | None:
    """``parent/name``, matching the name case-insensitively when the exact spelling is absent."""
    exact = parent / name
    if exact.is_dir() if want_dir else exact.is_file():
        return exact
    if not parent.is_dir():
        return None
    matches = sorted(p for p in parent.iterdir()
                     if p.name.lower() == name.lower() and (p.is_dir() if want_dir else p.is_file()))
    return matches[0] if matches else None


def normalised_text(data: bytes) -> bytes | None:
    """Text with LF endings, one final newline and no byte-order mark, or None when ``data`` already is.

    PyG's text readers split on '\\n' and drop the last piece, so a file without a final
    newline silently loses its last line, trailing blank lines break parsing, and CR
    characters or a leading BOM end up inside values.
    """
    if not data:
        return None
    text = data.removeprefix(UTF8_BOM).replace(b"\r\n", b"\n").replace(b"\r", b"\n").rstrip(b"\n \t") + b"\n"
    return None if text == data else text


@contextlib.contextmanager
def stage_lock(stage: Path) -> Iterator[None]:
    """Hold an exclusive lock on a cache folder while its files are written or processed.

    Two jobs started together (two benchmark rows, torchrun ranks) would otherwise process the same
    dataset into the same folder at once, and one reads the other's half-written ``data.pt``. Where
    ``fcntl`` is missing (Windows) the lock is skipped.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    stage.mkdir(parents=True, exist_ok=True)
    with open(stage / ".lock", "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def process_with_pyg(make: Callable[[], T], processed: Path, source: str, clean: bool = True) -> T:
    """Run PyG's processing of validated files; a failure becomes a `DataError` naming ``source``
    (not a traceback), and with ``clean`` the half-written ``processed`` folder is removed."""
    try:
        return make()
    except Exception as exc:
        if clean:
            shutil.rmtree(processed, ignore_errors=True)
        raise DataError(f"PyG could not process {source}: {type(exc).__name__}: {exc}") from exc


def stage_raw(name: str, files: dict[str, Path], raw_subdir: str, text_files: set[str] | None = None) -> Path:
    """Link ``files`` ({staged name: source}) into a cache folder named by their content; return its root.

    Text files that PyG would mis-read (no final newline, CR line ends) are staged as normalised
    copies instead of links. The source files are only read, never written.
    """
    text_files = text_files or set()
    digest = hashlib.sha256(f"{STAGE_VERSION}\0{name}\0".encode())
    contents: dict[str, bytes | None] = {}
    for staged in sorted(files):
        data = files[staged].read_bytes()
        digest.update(staged.encode() + b"\0" + len(data).to_bytes(8, "little") + data)
        contents[staged] = normalised_text(data) if staged in text_files else None
    stage = cache_dir() / "datasets" / f"{name}-{digest.hexdigest()[:12]}"
    with stage_lock(stage):
        _link_or_copy(stage / raw_subdir, files, contents)
    return stage


def _link_or_copy(raw: Path, files: dict[str, Path], contents: dict[str, bytes | None]) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for staged, src in files.items():
        dest = raw / staged
        fixed = contents[staged]
        if fixed is not None:
            if not dest.is_file() or dest.is_symlink() or dest.read_bytes() != fixed:
                dest.unlink(missing_ok=True)
                dest.write_bytes(fixed)
            continue
        src = src.resolve()
        # A link may point at another root's identical copy that has since moved: relink then.
        if dest.is_symlink() and Path(os.readlink(dest)) == src:
            continue
        if dest.is_file() and not dest.is_symlink():
            continue  # an earlier copy (no symlink support); same bytes by construction
        dest.unlink(missing_ok=True)
        try:
            dest.symlink_to(src)
        except FileExistsError:  # another process staged the same bytes a moment ago
            pass
        except OSError:  # e.g. Windows without symlink rights
            shutil.copy2(src, dest)


def is_offline() -> bool:
    """True when GNNFORMER_OFFLINE asks to skip download attempts (tests and air-gapped machines)."""
    return os.environ.get("GNNFORMER_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


@contextlib.contextmanager
def bounded_network(timeout: float | None = None) -> Iterator[None]:
    """Make PyG's downloads give up on a stalled connection instead of hanging for minutes.

    PyG fetches with fsspec/aiohttp (TU, Planetoid) or urllib (MoleculeNet); neither takes a
    timeout from PyG, so set one for aiohttp through fsspec's config and for urllib through the
    socket default, and restore both afterwards.
    """
    import fsspec.config

    if timeout is None:
        try:
            timeout = float(os.environ.get("GNNFORMER_DOWNLOAD_TIMEOUT", DOWNLOAD_STALL_TIMEOUT))
        except ValueError:
            timeout = DOWNLOAD_STALL_TIMEOUT
    saved_socket = socket.getdefaulttimeout()
    saved_conf = {k: fsspec.config.conf.get(k) for k in ("http", "https")}
    try:
        import aiohttp

        client = {"timeout": aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)}
        for proto in ("http", "https"):
            merged = dict(saved_conf[proto] or {})
            merged["client_kwargs"] = {**merged.get("client_kwargs", {}), **client}
            fsspec.config.conf[proto] = merged
    except ImportError:  # pragma: no cover - aiohttp ships with PyG's fsspec[http] extra
        pass
    socket.setdefaulttimeout(timeout)
    try:
        yield
    finally:
        socket.setdefaulttimeout(saved_socket)
        for proto, value in saved_conf.items():
            if value is None:
                fsspec.config.conf.pop(proto, None)
            else:
                fsspec.config.conf[proto] = value


def remove_stage(stage: Path) -> None:
    """Drop a staging folder after a failed download; only links and PyG's empty/partial files live there."""
    shutil.rmtree(stage, ignore_errors=True)


def missing_error(name: str, expected: list[str], missing: list[str], folder: Path, root: Path,
                  origin: str, layout: str, download: str) -> DataError:
    """The single, complete message for absent raw files."""
    lines = [
        f"Dataset {name!r} is not available: {', '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} missing.",
        f"  looked in: {folder}",
        f"  data root: {describe_root(root, origin)}",
        f"  expected:  {', '.join(expected)}",
        f"  download:  {download}",
    ]
    if origin == "embedded":
        lines.append("The built-in data holds only MUTAG, Cora and the chickenpox series (temporal/chickenpox.json).")
    lines.append(
        f"Fix: put the files in that folder, or point --data-root (or GNNFORMER_DATA) at a folder "
        f"laid out as <root>/{layout}.")
    return DataError("\n".join(lines))


def attempt_download(make: Callable[[], T], stage: Path, raw_dir: Path, required: list[str]) -> tuple[T | None, str]:
    """Let PyG fetch the missing files into the staging folder; ``(dataset, '')`` or ``(None, reason)``.

    Any failure whose required files are still absent afterwards is a download failure (PyG
    raises aiohttp, urllib or fsspec errors depending on the dataset class); the half-made
    staging folder is removed so no empty ``raw/`` is left behind.
    """
    if is_offline():
        remove_stage(stage)
        return None, "skipped (GNNFORMER_OFFLINE is set)"
    try:
        with bounded_network():
            return make(), ""
    except Exception as exc:  # aiohttp, urllib, fsspec or zip errors: classified just below
        if all((raw_dir / f).exists() for f in required):
            # The files arrived but PyG could not use them: not a download problem.
            raise DataError(f"Downloaded files in {raw_dir} could not be processed by PyG: "
                            f"{type(exc).__name__}: {exc}") from exc
        remove_stage(stage)
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"failed ({type(exc).__name__}{': ' + text[:200] if text else ''})"
