"""Comparing the live billing views with a fresh replay, row by row.

Both sides are read in primary-key order and merged, so memory stays bounded however big
the views are; each table reports at most MAX_REPORTED differences.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

MAX_REPORTED = 20

Keyed = Iterator[tuple[tuple, tuple]]


def _binary(conn: sa.Connection, column: sa.Column) -> sa.ColumnElement:
    # PostgreSQL sorts text by its collation; "C" is byte order, as SQLite and Python sort
    if conn.dialect.name == "postgresql" and isinstance(column.type, sa.String):
        return column.collate("C")
    return column


def _rows(conn: sa.Connection, table: sa.Table) -> Keyed:
    keys = [list(table.c).index(c) for c in table.primary_key.columns]
    query = sa.select(table).order_by(*[_binary(conn, c) for c in table.primary_key.columns])
    for row in conn.execution_options(yield_per=2000).execute(query):
        yield tuple(row[i] for i in keys), tuple(row)


def compare_table(table: sa.Table, live: sa.Connection, fresh: sa.Connection) -> list[str]:
    columns = [c.name for c in table.c]
    left, right = _rows(live, table), _rows(fresh, table)
    found: list[str] = []
    a, b = next(left, None), next(right, None)
    while (a is not None or b is not None) and len(found) < MAX_REPORTED:
        if b is None or (a is not None and a[0] < b[0]):
            found.append(f"{table.name} {a[0]}: in the live view only")  # type: ignore[index]
            a = next(left, None)
        elif a is None or b[0] < a[0]:
            found.append(f"{table.name} {b[0]}: missing from the live view")
            b = next(right, None)
        else:
            for name, x, y in zip(columns, a[1], b[1], strict=True):
                if x != y:
                    found.append(f"{table.name} {a[0]}: {name} is {x!r}, a replay gives {y!r}")
            a, b = next(left, None), next(right, None)
    return found


def compare_views(metadata: sa.MetaData, live: sa.Connection, fresh: sa.Connection) -> list[str]:
    """Every difference between the live views and a replay (none when they are right)."""
    found: list[str] = []
    for table in metadata.sorted_tables:
        found.extend(compare_table(table, live, fresh))
    return found
