"""Load rows in bulk with COPY, for the scenarios' ``fill`` functions."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import psycopg2.extensions

COPY_BATCH = 10_000
# The execution option that carries a load's progress-bar factory (tqdm) on the connection a scenario fills.
PROGRESS_OPTION = "project_progress"


def copy_rows(
    connection, table: str, columns: Sequence[str], rows: Iterable[Sequence], total: int | None = None
) -> int:
    """Load ``rows`` into ``table`` with COPY, in batches; return how many were loaded.

    Each batch goes to the server from a second thread while this one makes the next, so making rows in Python
    and the server storing them overlap (the driver lets go of the GIL while it waits for the server). The driver
    reads each batch in one piece: read in small pieces, each would wait for the GIL this thread holds.
    """
    driver_connection = connection.connection.driver_connection
    codec = psycopg2.extensions.encodings[driver_connection.encoding]
    cursor = driver_connection.cursor()
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    count = 0
    progress = connection.get_execution_options().get(PROGRESS_OPTION)
    bar = progress(total=total, desc=table, unit="rows") if progress and total else None
    with bar or contextlib.nullcontext(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy") as sender:
        sending: Future | None = None
        for buffer, size in _csv_batches(rows, COPY_BATCH, codec):
            if sending is not None:
                sending.result()  # one batch in flight at a time: the server's errors surface here, in order
            sending = sender.submit(cursor.copy_expert, statement, buffer, size=len(buffer.getbuffer()) or 1)
            count += size
            if bar:
                bar.update(size)
        if sending is not None:
            sending.result()
    return count


def _csv_batches(rows: Iterable[Sequence], size: int, codec: str) -> Iterator[tuple[io.BytesIO, int]]:
    """Yield ``rows`` as CSV encoded with ``codec``, ``size`` rows to a buffer, with each buffer's row count."""
    text, writer, count = io.StringIO(), None, 0
    for row in rows:
        if writer is None:
            writer = csv.writer(text)
        writer.writerow(row)
        count += 1
        if count == size:
            yield io.BytesIO(text.getvalue().encode(codec)), count
            text, writer, count = io.StringIO(), None, 0
    if count:
        yield io.BytesIO(text.getvalue().encode(codec)), count
