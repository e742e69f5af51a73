"""Text matching shared by the search and filter queries of every blueprint (SQL LIKE)."""
from __future__ import annotations


def escape_like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (``%`` and ``_`` are not wildcards)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


__all__ = ["escape_like"]
