"""Listing archives without trusting them.

Zip and tar are listed natively; gzip/bzip2/xz single streams are measured by
streaming decompression with a cap. Nothing is written to disk and nothing is
fully decompressed into memory: zip members are only read (streamed, capped)
to look inside nested archives. A declared or measured decompressed size over
``max_decompressed_bytes``, more than ``max_archive_entries`` members or
nesting deeper than ``max_archive_depth`` ends the listing as ``unscannable``
with ``limit-exceeded``: a zip bomb is a verdict, not an out-of-memory kill.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import IO

from gateway.config import ParserConfig
from gateway.mime.types import ArchiveEntry

CHUNK = 64 * 1024
NESTED_READ_CAP = 32 * 1024 * 1024  # bytes of a nested archive read into memory to list it


@dataclass(slots=True)
class Listing:
    """Members of an archive (recursively) and what stopped the listing."""

    entries: list[ArchiveEntry] = field(default_factory=list)
    encrypted: bool = False
    unscannable: tuple[str, str] | None = None
    total_size: int = 0


def _stream_size(handle: IO[bytes] | gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile, cap: int) -> int:
    """Bytes that decompress out of ``handle``, stopping just past ``cap``."""
    total = 0
    while total <= cap:
        chunk = handle.read(CHUNK)
        if not chunk:
            break
        total += len(chunk)
    return total


def list_zip(data: bytes, limits: ParserConfig, depth: int = 1, listing: Listing | None = None) -> Listing:
    """List a zip archive and the zips inside it, within ``limits``."""
    listing = listing or Listing()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        listing.unscannable = listing.unscannable or ("parse-error", f"broken zip: {type(exc).__name__}")
        return listing
    with archive:
        infos = archive.infolist()
        for info in infos:
            if len(listing.entries) >= limits.max_archive_entries:
                listing.unscannable = ("limit-exceeded", f"archive has more than {limits.max_archive_entries} entries")
                return listing
            encrypted = bool(info.flag_bits & 0x1)
            listing.entries.append(ArchiveEntry(info.filename, info.file_size, info.compress_size, encrypted, depth))
            listing.total_size += info.file_size
            if encrypted:
                listing.encrypted = True
            if listing.total_size > limits.max_decompressed_bytes:
                listing.unscannable = (
                    "limit-exceeded",
                    f"archive declares over {limits.max_decompressed_bytes} bytes decompressed",
                )
                return listing
        for info in infos:
            if info.flag_bits & 0x1 or info.is_dir():
                continue
            name = info.filename.lower()
            nested = name.endswith((".zip", ".jar", ".docx", ".xlsx", ".docm", ".xlsm", ".odt"))
            if not nested:
                continue
            if depth >= limits.max_archive_depth:
                listing.unscannable = ("limit-exceeded", f"archive nesting over {limits.max_archive_depth}")
                return listing
            try:
                with archive.open(info) as handle:
                    inner = handle.read(min(NESTED_READ_CAP, limits.max_decompressed_bytes) + 1)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, zlib.error) as exc:
                listing.unscannable = listing.unscannable or ("parse-error", f"unreadable member: {type(exc).__name__}")
                continue
            if len(inner) > min(NESTED_READ_CAP, limits.max_decompressed_bytes):
                listing.unscannable = ("limit-exceeded", f"nested archive {info.filename} too large to inspect")
                return listing
            list_zip(inner, limits, depth + 1, listing)
            if listing.unscannable and listing.unscannable[0] == "limit-exceeded":
                return listing
        # Declared sizes can lie: measure the real output of the biggest members, capped.
        budget = limits.max_decompressed_bytes - listing.total_size
        for info in sorted(infos, key=lambda i: i.compress_size, reverse=True)[:20]:
            if info.flag_bits & 0x1 or info.is_dir():
                continue
            try:
                with archive.open(info) as handle:
                    real = _stream_size(handle, info.file_size + budget)
            except NotImplementedError:
                # Deflate64, implode, PPMd...: listed, but the content cannot be checked.
                listing.unscannable = listing.unscannable or ("unsupported", f"compression of {info.filename}")
                continue
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error):
                # CRC or size mismatches show up here: a lying header.
                listing.unscannable = listing.unscannable or ("parse-error", f"corrupt member {info.filename}")
                continue
            if real > info.file_size:
                budget -= real - info.file_size
                if budget < 0:
                    listing.unscannable = ("limit-exceeded", "archive decompresses beyond its declared sizes")
                    return listing
    return listing


def list_tar(data: bytes, limits: ParserConfig) -> Listing:
    """List a (possibly compressed) tar archive member by member, streaming."""
    listing = Listing()
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|*") as archive:
            for member in archive:
                if len(listing.entries) >= limits.max_archive_entries:
                    listing.unscannable = (
                        "limit-exceeded",
                        f"archive has more than {limits.max_archive_entries} entries",
                    )
                    break
                listing.entries.append(ArchiveEntry(member.name, member.size, member.size, False, 1))
                listing.total_size += member.size
                if listing.total_size > limits.max_decompressed_bytes:
                    listing.unscannable = (
                        "limit-exceeded",
                        f"archive declares over {limits.max_decompressed_bytes} bytes decompressed",
                    )
                    break
    except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
        listing.unscannable = ("parse-error", f"unreadable tar: {type(exc).__name__}")
    return listing


def single_stream(data: bytes, kind: str, limits: ParserConfig) -> Listing:
    """A gzip/bzip2/xz file that is not a tar: one member, size measured with a cap."""
    listing = Listing()
    try:
        with _open_stream(kind, io.BytesIO(data)) as handle:
            size = _stream_size(handle, limits.max_decompressed_bytes)
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
        listing.unscannable = ("parse-error", f"unreadable {kind} stream: {type(exc).__name__}")
        return listing
    listing.entries.append(ArchiveEntry("(stream)", size, len(data), False, 1))
    listing.total_size = size
    if size > limits.max_decompressed_bytes:
        listing.unscannable = ("limit-exceeded", f"{kind} stream over {limits.max_decompressed_bytes} bytes")
    return listing


def _open_stream(kind: str, fileobj: io.BytesIO) -> gzip.GzipFile | bz2.BZ2File | lzma.LZMAFile:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=fileobj)
    if kind == "bzip2":
        return bz2.BZ2File(fileobj)
    return lzma.LZMAFile(fileobj)
