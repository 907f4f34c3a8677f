"""Crash-safe files: atomic writes, an append-only checksummed CSV, and an exclusive folder lock.

The promises, as SQLite and git make them: a reader never sees a torn file,
a torn last record (a crash or a full disk in the middle of an append) is
detected, reported by file and line and dropped, never merged with the next
one, and a second writer is refused while the first holds the lock.

* :func:`write_atomic`: write a temporary file in the same folder, fsync it,
  ``os.replace`` it over the target, fsync the folder.
* :class:`ChecksummedCSV`: every line, the header too, ends with the CRC-32 of
  the rest of the line; each append is one ``write`` + ``fsync``.
* :func:`exclusive_lock`: ``filelock``'s ``fcntl`` lock on a lock file that names
  the holder's PID and host.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import socket
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from prune_gym.errors import RunError

Writer = Callable[[IO[bytes]], None]


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened
        handle = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def write_atomic(path: str | os.PathLike, content: bytes | str | Writer) -> None:
    """Replace ``path`` by ``content`` (bytes, text, or a function writing to a binary handle), all or nothing.

    The parent folder must exist. On any failure (a full disk included) the
    target keeps its previous content and no temporary file is left behind.
    """
    path = Path(path)
    if isinstance(content, str):
        data = content.encode()
    elif isinstance(content, bytes):
        data = content
    else:  # rendered in memory first, so that a full disk is an OSError here and not inside the writer's library
        buffer = io.BytesIO()
        content(buffer)
        data = buffer.getvalue()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "wb", buffering=0) as handle:
            view = memoryview(data)
            while view:
                view = view[handle.write(view) or 0:]
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_folder(path.parent)


def check_regular_file(path: str | os.PathLike) -> None:
    """Refuse, in one line, a path that exists but is not a regular file (a FIFO would block a read forever)."""
    if os.path.lexists(path) and not Path(path).is_file():
        raise RunError(f"{path} is not a regular file (a FIFO, a folder, a device or a dangling link?): restore it, or "
                       "start a new run folder")


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksum(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


def _line(values: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    body = buffer.getvalue()
    return f"{body},{_checksum(body)}\n"


class ChecksummedCSV:
    """An append-only CSV file with a CRC-32 column, readable by any CSV reader.

    The header names ``fields`` then ``crc32``; every row holds the values then
    the CRC-32 (8 hex digits) of the line before its last comma.
    """

    def __init__(self, path: str | os.PathLike, fields: list[str]) -> None:
        self.path = Path(path)
        self.fields = list(fields)

    def read(self) -> tuple[list[dict[str, str]], str | None]:
        """The valid rows, and a warning if a torn last line was found (it is not returned).

        A torn line is an unterminated last one (an append is one write ending in a newline); a complete line whose
        checksum does not match is corruption, wherever it is, and is never dropped.

        Raises:
            RunError: a complete line is damaged, the header names other fields, or the path is not a regular file.
        """
        check_regular_file(self.path)
        if not self.path.exists():
            return [], None
        lines = self.path.read_bytes().split(b"\n")
        entries = [(raw, True) for raw in lines[:-1]] + ([(lines[-1], False)] if lines[-1] else [])
        rows: list[dict[str, str]] = []
        for number, (raw, terminated) in enumerate(entries, start=1):
            if not (terminated and self._intact(raw)):
                if not terminated and number == len(entries):
                    return rows, (f"{self.path} line {number} is torn (an interrupted write) and was dropped: "
                                  f"{raw[:60].decode(errors='replace')!r}")
                raise RunError(f"{self.path} line {number} is damaged (checksum mismatch): the file was modified or "
                               "corrupted; restore it or start a new run folder")
            values = next(csv.reader([raw.decode()[:-9]]))
            if number == 1:
                if values != self.fields:
                    raise RunError(f"{self.path} has columns {values}, expected {self.fields}: not written by this version of prune_gym")
                continue
            if len(values) != len(self.fields):
                raise RunError(f"{self.path} line {number} has {len(values)} values for {len(self.fields)} columns")
            rows.append(dict(zip(self.fields, values)))
        return rows, None

    @staticmethod
    def _intact(raw: bytes) -> bool:
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return False
        body, comma, checksum = text.rpartition(",")
        return bool(comma) and checksum == _checksum(body)

    def repair(self) -> str | None:
        """Cut a torn last line off the file (so the next append starts a fresh line); returns the warning, if any."""
        rows, warning = self.read()
        if warning is not None:
            good = b"".join(_line(v).encode() for v in [self.fields] + [[row[f] for f in self.fields] for row in rows])
            write_atomic(self.path, good)
        return warning

    def append(self, row: dict[str, Any]) -> None:
        """Append one row (values formatted with ``str``) durably; writes the header first into an empty file.

        Raises:
            RunError: the write failed (a full disk, say); the file is cut back to its last complete row.
        """
        data = _line([str(row[field]) for field in self.fields]).encode()
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(descriptor).st_size
            if size == 0:
                data = _line(self.fields).encode() + data
            try:
                written = 0
                while written < len(data):  # unbuffered: a failure surfaces here, not at close
                    written += os.write(descriptor, data[written:])
                os.fsync(descriptor)
            except OSError as error:
                with contextlib.suppress(OSError):
                    os.ftruncate(descriptor, size)
                raise RunError(f"could not append to {self.path} ({error.strerror or error}); "
                               "free some space, then resume the run") from None
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block; the lock file records the holder's PID and host.

    Raises:
        RunError: another process holds the lock (the message names its PID and host).
    """
    from filelock import FileLock, Timeout

    def record_holder(descriptor: int) -> None:
        os.write(descriptor, f"{os.getpid()} {socket.gethostname()}\n".encode())

    lock = FileLock(str(path), timeout=0, on_acquired=record_holder, thread_local=False, is_singleton=False)
    try:
        lock.acquire()
    except Timeout:
        holder = Path(path).read_text().split() if Path(path).exists() else []
        who = f"process {holder[0]} on {holder[1]}" if len(holder) >= 2 else "another process"
        raise RunError(f"{what} is in use by {who}; wait for it to finish, or stop it first") from None
    try:
        yield
    finally:
        lock.release()
