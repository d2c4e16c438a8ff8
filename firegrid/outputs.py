"""Output folder safety: the manifest of what FireGrid wrote, the atomic swap, leftover cleanup.

Three promises, kept for every output folder and every single file FireGrid writes:

- **Never delete or overwrite a file FireGrid did not write.** Each output folder holds a
  manifest (:data:`MANIFEST`: every file a run wrote, with its size and SHA-256). A previous
  run's outputs are replaced only as far as the manifest lists them, unchanged. Any other entry
  (a file the user put there, or an output the user edited since) is *foreign*: the run stops
  with one line naming it before the analysis starts and again before the swap. With
  ``force`` the run proceeds and carries the foreign entries into the new folder (hard links,
  else copies), never deleting them.
- **Atomic swap.** The new outputs are written into a hidden temporary folder beside the output
  folder (same parent, so the same file system), then exchanged with the previous folder in one
  step (Linux ``renameat2(RENAME_EXCHANGE)``); the previous outputs, now at the temporary path,
  are then deleted file by file from their manifest. At every instant the output path holds
  either the complete previous or the complete new outputs. Where the exchange is not
  available, two renames are used and an interruption between them is repaired at the next
  start.
- **No leftovers.** Temporary folders and files are hidden and named with the owning process
  id (``.<name>.firegrid-<pid>-<role>-<token>``); the next start cleans those whose process is
  gone (putting back a previous folder that an interrupted swap had moved aside).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import warnings
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from firegrid.spatial.errors import ConfigError

MANIFEST = ".firegrid-manifest.json"
# Earlier FireGrid versions marked their folders with this file and wrote these names; such a
# folder (marker, no manifest) is treated as listing exactly them.
LEGACY_MARKER = ".firegrid-output"
LEGACY_FILES = frozenset(
    {
        LEGACY_MARKER,
        "map.html",
        "results.gpkg",
        "grid_summary.csv",
        "grid_summary.xlsx",
        "summary.md",
        "summary.json",
    }
)
_TEMP = re.compile(r"^\.(?P<name>.+)\.firegrid-(?P<pid>\d+)-(?P<role>new|old|file)-[0-9a-f]+$")
# renameat2(2): flags and the syscall number where libc lacks the wrapper (glibc < 2.28).
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SYS_RENAMEAT2 = {"x86_64": 316, "aarch64": 276}


# --------------------------------------------------------------------------------------------
# Manifest


def file_digest(path: Path) -> dict[str, Any]:
    """Size in bytes and SHA-256 of a file, as stored in the manifest.

    A run checks the same outputs several times (the folder's before the analysis and
    again before the swap, the new ones for the manifest): a file whose status (device,
    inode, size, modification and change times in nanoseconds) is the one hashed before in
    this process is not read again (a city's results.gpkg: 0.8 s a read). Any write to it,
    or a rename over it, changes the change time, which no program can set back.
    """
    key = _status(path)
    if (known := _DIGESTS.get(key)) is not None:
        return dict(known)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = {"size": key[2], "sha256": h.hexdigest()}
    if _status(path) == key:  # unchanged while it was read
        _DIGESTS[key] = dict(digest)
    return digest


def _status(path: Path) -> tuple[int, ...]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


# The digests this process made, by file status (see file_digest).
_DIGESTS: dict[tuple[int, ...], dict[str, Any]] = {}


def read_manifest(folder: str | os.PathLike) -> dict[str, dict[str, Any]] | None:
    """The files a FireGrid run wrote into ``folder`` (name → size and SHA-256), or None.

    A folder of an earlier version (legacy marker, no manifest) lists its FireGrid file names
    present, with no digest to check.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            files = data["files"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{path}: FireGrid's manifest of this folder is unreadable ({exc}); "
                "move the folder away or choose another --out"
            ) from exc
        return {str(k): dict(v) for k, v in files.items()}
    if (folder / LEGACY_MARKER).is_file():
        return {n: {} for n in LEGACY_FILES if (folder / n).is_file()}
    return None


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.parent / _temp_name(path.name, "file")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_manifest(folder: Path, files: dict[str, dict[str, Any]]) -> Path:
    """Write (atomically replace) ``folder``'s manifest listing ``files``."""
    data = {
        "written_by": "firegrid",
        "at": datetime.now().isoformat(timespec="seconds"),
        "files": dict(sorted(files.items())),
    }
    path = folder / MANIFEST
    _atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1))
    return path


def _is_ours(path: Path, entry: dict[str, Any]) -> bool:
    """Whether ``path`` is still the file FireGrid wrote (size and one of the known digests)."""
    if not path.is_file() or path.is_symlink():
        return False
    if not entry:  # legacy folder: listed by name only
        return True
    if path.stat().st_size != entry.get("size") and "previous" not in entry:
        return False
    digests = {entry.get("sha256"), (entry.get("previous") or {}).get("sha256")}
    return file_digest(path)["sha256"] in digests


def foreign_entries(folder: str | os.PathLike) -> list[str]:
    """Entries of ``folder`` that FireGrid did not write (or that changed since), sorted.

    FireGrid's own hidden temporary files (named with a process id) are not counted.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    listed = read_manifest(folder) or {}
    out = []
    for entry in folder.iterdir():
        name = entry.name
        if name in (MANIFEST, LEGACY_MARKER) or _TEMP.match(name):
            continue
        if name not in listed or not _is_ours(entry, listed[name]):
            out.append(name)
    return sorted(out)


def _foreign_error(folder: Path, names: list[str]) -> ConfigError:
    more = f" and {len(names) - 1} more" if len(names) > 1 else ""
    return ConfigError(
        f"{folder / names[0]}{more}: FireGrid did not write this (or it changed since) and never "
        "deletes such files; move it, choose another --out, or pass --force to keep it beside "
        "the new outputs"
    )


# --------------------------------------------------------------------------------------------
# Leftovers of interrupted runs


def _temp_name(name: str, role: str) -> str:
    return f".{name}.firegrid-{os.getpid()}-{role}-{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (its temporaries are then left alone)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    except OSError:
        return False
    return True


def _alive_windows(pid: int) -> bool:
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # access denied: another user's live process
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return not ok or code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _stale(parent: Path, name: str, roles: Iterable[str]) -> list[tuple[str, Path]]:
    """FireGrid's temporaries for ``name`` in ``parent`` whose process is gone: (role, path)."""
    if not parent.is_dir():
        return []
    out = []
    for entry in parent.iterdir():
        m = _TEMP.match(entry.name)
        if m and m["name"] == name and m["role"] in roles and not _alive(int(m["pid"])):
            out.append((m["role"], entry))
    # the folder an interrupted swap moved aside is put back before anything else is cleaned
    return sorted(out, key=lambda item: item[0] != "old")


def clean_leftovers(path: str | os.PathLike) -> list[Path]:
    """Clean what interrupted runs left beside output folder or file ``path``.

    A previous output folder moved aside by an interrupted two-rename swap is put back when
    ``path`` is missing; every other temporary folder is emptied of FireGrid's files (anything
    else is moved back into ``path``) and removed; half-written temporary files are deleted.
    Only temporaries whose owning process is gone are touched.

    Returns
    -------
    The temporaries cleaned.
    """
    path = Path(path).expanduser().absolute()
    cleaned = []
    for role, tmp in _stale(path.parent, path.name, ("new", "old", "file")):
        if role == "file":
            tmp.unlink(missing_ok=True)
        elif role == "old" and not path.exists():
            os.rename(tmp, path)
        else:
            _retire(tmp, into=path)
        cleaned.append(tmp)
    if path.is_dir():  # half-written single files (firegrid map) inside the folder
        for entry in path.iterdir():
            m = _TEMP.match(entry.name)
            if m and m["role"] == "file" and not _alive(int(m["pid"])):
                entry.unlink(missing_ok=True)
                cleaned.append(entry)
    return cleaned


def _same(a: Path, b: Path) -> bool:
    """Whether ``b`` holds the same content as ``a`` (a hard link of it or an equal copy)."""
    if a.is_dir() and not a.is_symlink():
        if not b.is_dir():
            return False
        names = {e.name for e in a.iterdir()}
        if names != {e.name for e in b.iterdir()}:
            return False
        return all(_same(a / n, b / n) for n in names)
    if a.is_symlink() or b.is_symlink():
        return a.is_symlink() and b.is_symlink() and os.readlink(a) == os.readlink(b)
    if not b.is_file():
        return False
    if os.path.samefile(a, b):
        return True
    return a.stat().st_size == b.stat().st_size and file_digest(a) == file_digest(b)


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def _retire(tmp: Path, *, into: Path) -> None:
    """Empty and remove a temporary folder: delete FireGrid's files, move anything else back.

    FireGrid's files are those its manifest lists; a folder without a manifest was still being
    written, so everything named like an output (and SQLite side files) is FireGrid's. An entry
    that ``into`` also holds (the hard link or copy carried over under ``force``) is deleted here;
    any other is moved into ``into``. What cannot be moved is kept in a visible folder beside.
    """
    listed = read_manifest(tmp)
    for entry in list(tmp.iterdir()):
        name = entry.name
        if name in (MANIFEST, LEGACY_MARKER):
            continue
        # a listed file changed since it was written (in the moment before the swap) is the
        # user's now: it is moved back, not deleted
        if _TEMP.match(name):  # a half-written file of FireGrid's (its manifest, a map)
            ours = True
        elif listed is not None:
            ours = name in listed and _is_ours(entry, listed[name])
        else:
            ours = _output_like(name)
        target = into / name
        if (ours and not entry.is_dir()) or (target.exists() and _same(entry, target)):
            _remove(entry)
        elif not target.exists() and into.is_dir():
            os.rename(entry, target)
    for name in (MANIFEST, LEGACY_MARKER):
        (tmp / name).unlink(missing_ok=True)
    try:
        tmp.rmdir()
    except OSError:
        kept = into.parent / f"{into.name}.kept-{datetime.now():%Y%m%d-%H%M%S}"
        os.rename(tmp, kept)
        warnings.warn(
            f"files FireGrid did not write could not be put back into {into}: kept in {kept}",
            stacklevel=2,
        )


# Names (and name prefixes, for side files such as results.gpkg-journal) FireGrid writes.
OUTPUT_NAMES: frozenset[str] = LEGACY_FILES - {LEGACY_MARKER}


def _output_like(name: str) -> bool:
    return any(name == n or name.startswith(f"{n}-") for n in OUTPUT_NAMES)


# --------------------------------------------------------------------------------------------
# The swap


def _libc_renameat2() -> Callable[[bytes, bytes], int] | None:
    if platform.system() != "Linux":
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    if hasattr(libc, "renameat2"):
        fn = libc.renameat2
        fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
        return lambda a, b: fn(_AT_FDCWD, a, _AT_FDCWD, b, _RENAME_EXCHANGE)
    number = _SYS_RENAMEAT2.get(platform.machine())
    if number is None:
        return None
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    return lambda a, b: syscall(
        ctypes.c_long(number),
        ctypes.c_int(_AT_FDCWD),
        ctypes.c_char_p(a),
        ctypes.c_int(_AT_FDCWD),
        ctypes.c_char_p(b),
        ctypes.c_uint(_RENAME_EXCHANGE),
    )


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step; False where the system cannot (then nothing moved)."""
    fn = _libc_renameat2()
    if fn is None:
        return False
    if fn(os.fsencode(a), os.fsencode(b)) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # old kernel or a file system without RENAME_EXCHANGE
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(tmp: Path, folder: Path) -> Path | None:
    """Put the complete folder ``tmp`` at ``folder``; returns where the previous outputs are.

    If this raises, ``folder`` is as before and ``tmp`` still holds the new outputs.
    """
    if not folder.exists():
        os.rename(tmp, folder)
        return None
    if exchange(tmp, folder):
        return tmp  # tmp now holds the previous outputs
    # Two renames; an interruption between them is repaired by clean_leftovers.
    old = folder.parent / _temp_name(folder.name, "old")
    os.rename(folder, old)
    try:
        os.rename(tmp, folder)
    except BaseException:
        os.rename(old, folder)  # put the previous outputs back
        raise
    return old


def _carry(folder: Path, names: Iterable[str], tmp: Path) -> None:
    """Hard-link (else copy) foreign entries into the new folder, so the swap keeps them."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    for name in names:
        src, dst = folder / name, tmp / name
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_dir():
            shutil.copytree(src, dst, symlinks=True, copy_function=link)
        else:
            link(str(src), str(dst))


def prepare_output_folder(
    folder: str | os.PathLike, *, force: bool = False, reserved: Iterable[str] = ()
) -> Path:
    """Check an output folder before the analysis starts; returns it resolved.

    Cleans leftovers of interrupted runs (:func:`clean_leftovers`), then refuses a path that is
    a file, the file-system root, or a folder holding entries FireGrid did not write (unless
    ``force``). A foreign entry named like an output in ``reserved`` is refused even with
    ``force``: it could be neither kept in place nor overwritten.

    Raises
    ------
    ConfigError
        Naming the path and, for a foreign entry, the file.
    """
    folder = Path(folder).expanduser().resolve()
    if folder.parent == folder:
        raise ConfigError(f"{folder}: cannot use the file-system root as the output folder")
    clean_leftovers(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: the output path exists and is not a folder")
    foreign = foreign_entries(folder)
    clash = sorted(set(foreign) & set(reserved))
    if clash:
        raise ConfigError(
            f"{folder / clash[0]}: FireGrid did not write this (or it changed since) and it is "
            "named like an output FireGrid writes; move or rename it, or choose another --out"
        )
    if foreign and not force:
        raise _foreign_error(folder, foreign)
    return folder


def write_folder_atomically(
    folder: str | os.PathLike, write: Callable[[Path], None], *, force: bool = False
) -> Path:
    """Run ``write(tmp)`` to fill a hidden temporary folder, then swap it in as ``folder``.

    The folder is checked as by :func:`prepare_output_folder` at the start and again just
    before the swap (the user may have put a file there meanwhile). Every file ``write`` made
    is listed in the new folder's manifest. If ``write`` raises, or the run is interrupted,
    the temporary folder is removed and ``folder`` is untouched.

    Raises
    ------
    ConfigError
        A foreign file in the folder (without ``force``), or the folder cannot be written
        (permissions, disk full …), naming it.
    """
    folder = prepare_output_folder(folder, force=force)
    tmp = folder.parent / _temp_name(folder.name, "new")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()  # the usual permissions (umask), unlike mkdtemp's 0700
    except OSError as exc:
        raise ConfigError(
            f"{folder}: cannot write the outputs here ({exc.strerror or exc})"
        ) from exc
    try:
        write(tmp)
        files = {p.name: file_digest(p) for p in tmp.iterdir() if p.is_file()}
        foreign = foreign_entries(folder)
        clash = sorted(set(foreign) & set(files))
        if clash or (foreign and not force):
            raise _foreign_error(folder, clash or foreign)
        _carry(folder, foreign, tmp)
        write_manifest(tmp, files)
        previous = _swap_in(tmp, folder)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"{folder}: cannot write the outputs ({exc.strerror or exc})") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # The new outputs are in place: only now are the previous ones deleted (an interruption
    # here leaves a hidden folder that the next start cleans).
    if previous is not None:
        try:
            _retire(previous, into=folder)
        except OSError as exc:
            raise ConfigError(
                f"{folder}: the new outputs are in place, but the previous ones in {previous} "
                f"could not be removed ({exc.strerror or exc})"
            ) from exc
    return folder


def check_output_file(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Check a single output file's path before the work starts; returns it absolute.

    Cleans half-written temporaries of interrupted runs beside it, then refuses a folder, or an
    existing file that its folder's manifest does not list unchanged (unless ``force``).

    Raises
    ------
    ConfigError
        Naming the path.
    """
    path = Path(path).expanduser().absolute()
    clean_leftovers(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; name the file to write")
    listed = read_manifest(path.parent) or {}
    if path.exists() and not force and not _is_ours(path, listed.get(path.name, {"size": -1})):
        raise ConfigError(
            f"{path}: exists and FireGrid did not write it (or it changed since); choose another "
            "file or pass --force to overwrite it"
        )
    return path


def write_file(path: str | os.PathLike, data: str | bytes, *, force: bool = False) -> Path:
    """Write one output file (``firegrid map --out FILE``) atomically, never over a foreign one.

    ``path`` is checked by :func:`check_output_file`, written to a hidden temporary beside it
    and renamed into place, and recorded in its folder's manifest (created when the folder has
    none).

    Raises
    ------
    ConfigError
        ``path`` exists and FireGrid did not write it (without ``force``), is a folder, or
        cannot be written.
    """
    path = check_output_file(path, force=force)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # an earlier version's folder lists names only: record what is there now with digests
        listed = {
            name: entry or file_digest(folder / name)
            for name, entry in (read_manifest(folder) or {}).items()
        }
        tmp = folder / _temp_name(path.name, "file")
        try:
            tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
            digest = file_digest(tmp)
            # Listed before the rename with the file it replaces as "previous": whichever of
            # the two an interruption leaves in place still counts as FireGrid's.
            entry = dict(digest)
            if path.is_file() and path.name in listed:
                entry["previous"] = file_digest(path)
            write_manifest(folder, {**listed, path.name: entry})
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        write_manifest(folder, {**listed, path.name: digest})
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the file ({exc.strerror or exc})") from exc
    return path


__all__ = [
    "MANIFEST",
    "check_output_file",
    "clean_leftovers",
    "exchange",
    "file_digest",
    "foreign_entries",
    "prepare_output_folder",
    "read_manifest",
    "write_file",
    "write_folder_atomically",
    "write_manifest",
]
