"""Area scope in SQL: a column inside one of the holder's area subtrees."""

from __future__ import annotations


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def area_scope(roots: tuple[str, ...] | None) -> tuple[list[str] | None, list[str] | None]:
    """Parameters for ``_in_areas``: the roots and their ``root/%`` LIKE patterns (with the
    LIKE wildcards of the codes escaped); (None, None) means no area restriction."""
    if roots is None:
        return None, None
    return list(roots), [_like_escape(r) + "/%" for r in roots]


def _in_areas(column: str, roots: int, patterns: int) -> str:
    """SQL: ``column`` is one of the roots or lies below one (whole path segments only)."""
    return (
        f"(${roots}::text[] IS NULL OR {column} = ANY(${roots}::text[])"
        f" OR {column} LIKE ANY(${patterns}::text[]))"
    )
