"""Area paths: every case event names its place as codes from the district down to the grid
joined by '/' (``YA/YA01/YA0101/YA010101``), so that no consumer needs the jurisdiction
tree. These are the only rules for reading one."""

from __future__ import annotations

SEPARATOR = "/"


def within(area_path: str, root: str) -> bool:
    """``area_path`` lies in the subtree rooted at ``root`` (``root`` itself included)."""
    return area_path == root or area_path.startswith(root + SEPARATOR)


def ancestors(area_path: str) -> list[str]:
    """``YA/YA01/YA0101`` → ``["YA", "YA/YA01", "YA/YA01/YA0101"]`` (itself included)."""
    parts = area_path.split(SEPARATOR)
    return [SEPARATOR.join(parts[: i + 1]) for i in range(len(parts))]


def depth(area_path: str) -> int:
    """0 for a district, 1 for a street, … (the number of separators)."""
    return area_path.count(SEPARATOR)
