"""What every .xlsx we write must respect."""

from __future__ import annotations

from typing import Any

# a cell that begins with one of these is run as a formula by Excel and LibreOffice
DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula (=, +, -, @) is kept as text."""
    if isinstance(value, str) and value.startswith(DANGEROUS_START):
        return "'" + value
    return value


def safe_row(values: list[Any]) -> list[Any]:
    return [neutralise(v) for v in values]
