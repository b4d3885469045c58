"""Reading everything a stolen disk would give away: every file under a directory, every
gzip member and zstd frame found inside any of them, and every value of every Parquet part
(read with DuckDB, whatever its page compression). Shared by the IP-privacy and the
stolen-disk tests."""

from __future__ import annotations

import pathlib
import zlib

import duckdb
import zstandard


def decompressed_views(data: bytes):
    """(label, bytes) for every gzip member and zstd frame that decompresses from inside `data`."""
    offset = data.find(b"\x1f\x8b\x08")
    while offset != -1:
        try:
            out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[offset:], 256 << 20)
            if out:
                yield f"gzip@{offset}", out
        except zlib.error:
            pass
        offset = data.find(b"\x1f\x8b\x08", offset + 1)
    dctx = zstandard.ZstdDecompressor()
    offset = data.find(b"\x28\xb5\x2f\xfd")
    while offset != -1:
        try:
            out = dctx.decompressobj().decompress(data[offset:])
            if out:
                yield f"zstd@{offset}", out
        except zstandard.ZstdError:
            pass
        offset = data.find(b"\x28\xb5\x2f\xfd", offset + 1)


def parquet_values(path: pathlib.Path):
    """Every value of every row of a Parquet part, as text (reads LZ4 and zstd pages alike)."""
    rows = duckdb.connect().execute("SELECT CAST(COLUMNS(*) AS VARCHAR) FROM read_parquet(?)", [str(path)]).fetchall()
    return repr(rows).encode()


def all_files(directory: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())




def find_needles(paths, patterns: dict[str, bytes]) -> tuple[list[str], int, int]:
    """Hits of any pattern in any view of any file, as readable strings; also the number of
    files read and of compressed frames opened (a scan that opened none would be blind)."""
    hits, files, frames = [], 0, 0
    for path in paths:
        data = path.read_bytes()
        files += 1
        views = [("raw", data)]
        for view in decompressed_views(data):
            frames += 1
            views.append(view)
        if path.suffix == ".parquet":
            frames += 1
            views.append(("parquet values", parquet_values(path)))
        for label, view in views:
            for name, needle in patterns.items():
                at = view.find(needle)
                if at != -1:
                    context = view[max(0, at - 24): at + len(needle) + 24]
                    hits.append(f"{path} [{label}] offset {at}: {name}; context {context!r}")
    return hits, files, frames
