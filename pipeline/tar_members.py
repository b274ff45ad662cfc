"""A tar stream with the bytes Python's `tarfile` (PAX format, stream mode) writes, at a fraction of the cost.

Every member is a regular file with fixed metadata. When a member needs no PAX extended header (an ASCII
name of at most 100 bytes, a size below 8 GiB) its ustar header is built here directly; any other member
gets its header from `tarfile.TarInfo.tobuf`, exactly as `tarfile.addfile` would. The end is two zero
blocks padded to a 10 KiB record, as `TarFile.close` writes it. So the shards keep their bytes.
"""
from __future__ import annotations

import tarfile
from typing import BinaryIO

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE
MAX_NAME = 100  # ustar name field
MAX_SIZE = 8**11  # 11 octal digits


def _octal(value: int, digits: int) -> bytes:
    """tarfile's number field: zero-padded octal, NUL-terminated."""
    return b"%0*o\0" % (digits - 1, value)


def _field(text: str, length: int) -> bytes:
    raw = text.encode("ascii")
    return raw[:length] + b"\0" * (length - len(raw))


class TarMembers:
    """Appends members (name, bytes) to an open binary stream; `close()` writes the end of the archive."""

    def __init__(self, stream: BinaryIO, user: str, group: str, mode: int, mtime: int) -> None:
        self.stream = stream
        self.offset = 0
        self._meta = (user, group, mode, mtime)
        # A ustar header is name (100), mode, uid, gid (8 each), size (12), mtime (12), checksum (8), then fields
        # that are the same for every member here: type, link name, magic, user and group names, device
        # numbers (empty for regular files), prefix, and zeros up to the block.
        self._ids = _octal(mode & 0o7777, 8) + _octal(0, 8) + _octal(0, 8)
        self._mtime = _octal(mtime, 12)
        self._tail = (tarfile.REGTYPE + b"\0" * 100 + tarfile.POSIX_MAGIC + _field(user, 32) + _field(group, 32)
                      ).ljust(BLOCK - 156, b"\0")
        # tarfile's checksum: the sum of the block's bytes, the checksum field counted as 8 spaces
        self._fixed_sum = sum(self._ids) + sum(self._mtime) + sum(self._tail) + 8 * ord(" ")

    def header(self, name: str, size: int) -> bytes:
        """The header block(s) `tarfile` writes for a regular file `name` of `size` bytes."""
        if not (name.isascii() and len(name) <= MAX_NAME and 0 <= size < MAX_SIZE):
            return self._tarfile_header(name, size)
        raw = name.encode("ascii")
        size_field = _octal(size, 12)
        checksum = self._fixed_sum + sum(raw) + sum(size_field)
        return b"".join((raw, b"\0" * (MAX_NAME - len(raw)), self._ids, size_field, self._mtime,
                         b"%06o\0 " % checksum, self._tail))

    def _tarfile_header(self, name: str, size: int) -> bytes:
        user, group, mode, mtime = self._meta
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode, info.uname, info.gname = size, mtime, mode, user, group
        return info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape")

    def add(self, name: str, data: bytes | bytearray | memoryview) -> None:
        """One regular file member."""
        size = memoryview(data).nbytes
        chunk = b"".join((self.header(name, size), data, b"\0" * (-size % BLOCK)))
        self.stream.write(chunk)
        self.offset += len(chunk)

    def close(self) -> None:
        """Two zero blocks, then zeros up to a whole record."""
        end = 2 * BLOCK
        end += -(self.offset + end) % RECORD
        self.stream.write(b"\0" * end)
        self.offset += end

