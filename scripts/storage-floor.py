"""How small a data directory's parts could get without changing what they hold.

For every column of every part, in the part's own row order (per day, sorted
by user and time), this compresses the plain values with xz at its strongest
setting (`-9e`) and prints the bytes per event next to what the Parquet column
chunks take. xz sees each column of a part as one stream and finds repeats
and skewed values that Parquet's encodings and zstd leave: it is a floor for
any encoding of the same columns in the same order, not a layout to ship
(it cannot be read column by column, page by page, or by DuckDB).

Numbers are written as LEB128 varints of their zigzag form (`time` and
`user_key` as the difference to the previous row), strings one per line,
binary ids back to back.

Usage (the venv that `scripts/bench.sh` makes has duckdb):
    .test-deps/venv/bin/python scripts/storage-floor.py DATA_DIR [DUCKDB_FILE]
with DATA_DIR a `hearth-bench ingest --data DATA_DIR` directory; DUCKDB_FILE
defaults to DATA_DIR/duckdb.parquet, the bench's DuckDB copy of the events.
"""

import collections
import glob
import lzma
import os
import sys

import duckdb

DELTA_COLUMNS = {"time", "user_key"}


def varints(values, delta):
    out = bytearray()
    previous = 0
    for value in values:
        if value is None:
            out.append(0x7F)
            continue
        number = value - previous if delta else value
        previous = value
        number = (number << 1) ^ (number >> 63)
        while number >= 0x80:
            out.append((number & 0x7F) | 0x80)
            number >>= 7
        out.append(number)
    return bytes(out)


def xz_bytes(data):
    return len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    data_dir = sys.argv[1]
    duck_file = sys.argv[2] if len(sys.argv) == 3 else os.path.join(data_dir, "duckdb.parquet")
    parts = sorted(glob.glob(os.path.join(data_dir, "parts", "**", "*.parquet"), recursive=True))
    if not parts:
        sys.exit(f"storage-floor: no parts under {os.path.join(data_dir, 'parts')}")
    con = duckdb.connect()
    con.execute("SET threads TO 1")
    floor = collections.Counter()
    parquet = collections.Counter()
    events = 0
    for part in parts:
        schema = con.execute("SELECT name, type FROM parquet_schema(?) WHERE num_children IS NULL", [part]).fetchall()
        for name, size in con.execute("SELECT path_in_schema, sum(total_compressed_size) FROM parquet_metadata(?) GROUP BY 1", [part]).fetchall():
            parquet[name] += size
        for name, physical in schema:
            quoted = '"' + name.replace('"', '""') + '"'
            if physical in ("INT64", "INT32", "BOOLEAN"):
                value = f"epoch_ms({quoted})" if name == "time" else f"{quoted}::BIGINT"
            else:
                value = quoted
            rows = con.execute(f"SELECT {value} FROM read_parquet(?, file_row_number = true) ORDER BY file_row_number", [part]).fetchall()
            values = [row[0] for row in rows]
            if name == "user_key":
                events += len(values)
            if physical in ("INT64", "INT32", "BOOLEAN"):
                data = varints(values, name in DELTA_COLUMNS)
            elif name == "insert_id":
                data = b"".join(v for v in values if v is not None)
            else:
                data = b"\n".join(b"\x00" if v is None else (v if isinstance(v, bytes) else str(v).encode()) for v in values)
            floor[name] += xz_bytes(data)
    duck_bytes = os.path.getsize(duck_file) if os.path.exists(duck_file) else None
    duck_events = con.execute("SELECT count(*) FROM read_parquet(?)", [duck_file]).fetchone()[0] if duck_bytes else None

    print(f"{events} events in {len(parts)} parts; bytes per event by column")
    print(f"{'column':<36} {'Parquet':>9} {'xz -9e':>9}")
    for name, _ in parquet.most_common(16):
        print(f"{name:<36} {parquet[name] / events:9.2f} {floor[name] / events:9.2f}")
    files = sum(os.path.getsize(p) for p in parts)
    print(f"{'all columns (Parquet: whole files)':<36} {files / events:9.2f} {sum(floor.values()) / events:9.2f}")
    if duck_bytes:
        duck_per_event = duck_bytes / duck_events
        print(f"DuckDB's zstd Parquet of the same events: {duck_per_event:.2f} bytes per event")
        print(f"ratio to DuckDB: parts {files / events / duck_per_event:.3f}, xz floor {sum(floor.values()) / events / duck_per_event:.3f}")


if __name__ == "__main__":
    main()
