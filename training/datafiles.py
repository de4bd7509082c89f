"""Reading and writing the contract's data files: events and catalog.

Events are JSON Lines (optionally gzipped) or Parquet; a catalog is JSON Lines or CSV.
Readers stream row by row so a ten-million-event file never sits in memory as dicts.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import orjson


def open_text(path: Path, mode: str = "rb") -> IO[bytes]:
    """Open plain or gzipped files alike, by extension."""
    if path.suffix == ".gz":
        level = 1 if "w" in mode else 9  # fast writes; the level does not matter for reads
        return cast(IO[bytes], gzip.open(path, mode, compresslevel=level))
    return cast(IO[bytes], open(path, mode))


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """Yield event rows from a JSON Lines (.jsonl, .jsonl.gz) or Parquet file."""
    if path.suffix == ".parquet":
        yield from _read_parquet(path)
        return
    with open_text(path) as lines:
        for line in lines:
            if line.strip():
                yield orjson.loads(line)


def read_catalog(path: Path) -> list[dict[str, Any]]:
    """Catalog items from JSON Lines or CSV, in file order."""
    if path.name.endswith((".csv", ".csv.gz")):
        with open_text(path) as raw:
            return [_typed_csv_item(row) for row in csv.DictReader(io.TextIOWrapper(raw, "utf-8"))]
    with open_text(path) as lines:
        return [orjson.loads(line) for line in lines if line.strip()]


def write_jsonl(path: Path, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> int:
    """Write rows as JSON Lines (gzipped when the name ends in .gz); return the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open_text(path, "wb") as out:
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")
            count += 1
    return count


def parse_timestamp(value: Any) -> float:
    """Seconds since the epoch from an ISO 8601 string or a number."""
    if isinstance(value, int | float):
        return float(value)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _read_parquet(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
        for row in batch.to_pylist():
            yield {key: value for key, value in row.items() if value is not None}


def _typed_csv_item(row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {key: value for key, value in row.items() if value not in ("", None)}
    if "price" in item:
        item["price"] = float(item["price"])
    if "in_stock" in item:
        item["in_stock"] = item["in_stock"].strip().lower() in ("1", "true", "yes")
    if "tags" in item:
        item["tags"] = [tag for tag in item["tags"].split("|") if tag]
    return item
