"""Reference data: the category catalogue, departments, routing rules, liaison units."""

from __future__ import annotations

import asyncpg

from services.dispatch.domain import Category, Contact, Department, LiaisonUnits, RoutingRule
from shared.db import Conn
from shared.dto import from_row


async def list_categories(conn: Conn) -> list[Category]:
    rows = await conn.fetch(
        "SELECT code, name, parent_code, department_kind FROM categories ORDER BY code"
    )
    return [Category(**dict(r)) for r in rows]


_DEPARTMENT_COLUMNS = "id, name, kind, areas, contacts"


def _department(row: asyncpg.Record) -> Department:
    return Department(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        areas=tuple(row["areas"]),
        contacts=tuple(Contact(c["name"], c["phone"], c.get("role")) for c in row["contacts"]),
    )


def _contacts_json(d: Department) -> list[dict[str, str]]:
    return [
        {"name": c.name, "phone": c.phone, **({"role": c.role} if c.role else {})}
        for c in d.contacts
    ]


async def list_departments(conn: Conn) -> list[Department]:
    rows = await conn.fetch(f"SELECT {_DEPARTMENT_COLUMNS} FROM departments ORDER BY id")
    return [_department(r) for r in rows]


async def get_department(conn: Conn, department_id: str) -> Department | None:
    row = await conn.fetchrow(
        f"SELECT {_DEPARTMENT_COLUMNS} FROM departments WHERE id = $1", department_id
    )
    return _department(row) if row else None


async def put_department(conn: Conn, d: Department) -> bool:
    """Create or replace one department; True when it was created."""
    return await conn.fetchval(
        "INSERT INTO departments (id, name, kind, areas, contacts) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
        " areas = EXCLUDED.areas, contacts = EXCLUDED.contacts, updated_at = now()"
        " RETURNING xmax = 0",
        d.id,
        d.name,
        d.kind,
        list(d.areas),
        _contacts_json(d),
    )


_RULE_COLUMNS = "id, category_code, area_prefix, department_id, co_department_ids"


def _rule(row: asyncpg.Record) -> RoutingRule:
    return from_row(RoutingRule, row, co_department_ids=tuple)


async def list_rules(conn: Conn, category: str | None = None) -> list[RoutingRule]:
    rows = await conn.fetch(
        f"SELECT {_RULE_COLUMNS} FROM routing_rules"
        " WHERE $1::text IS NULL OR category_code = $1 ORDER BY category_code, area_prefix, id",
        category,
    )
    return [_rule(r) for r in rows]


async def rules_for(conn: Conn, lineage: tuple[str, ...]) -> list[RoutingRule]:
    """The rules of the category and of its 大类 (what can route a case of it)."""
    rows = await conn.fetch(
        f"SELECT {_RULE_COLUMNS} FROM routing_rules WHERE category_code = ANY($1::text[])"
        " ORDER BY id",
        list(lineage),
    )
    return [_rule(r) for r in rows]


async def lock_rules(conn: Conn) -> None:
    """Serialise rule changes: the ambiguity check reads every rule, so two admins saving
    overlapping rules at once must not both pass it."""
    await conn.execute("LOCK TABLE routing_rules IN SHARE ROW EXCLUSIVE MODE")


async def get_rule(conn: Conn, rule_id: int) -> RoutingRule | None:
    row = await conn.fetchrow(f"SELECT {_RULE_COLUMNS} FROM routing_rules WHERE id = $1", rule_id)
    return _rule(row) if row else None


async def delete_rule(conn: Conn, rule_id: int) -> bool:
    return bool(
        await conn.fetchval("DELETE FROM routing_rules WHERE id = $1 RETURNING true", rule_id)
    )


async def insert_rule(
    conn: Conn,
    category: str,
    area_prefix: str,
    department_id: str,
    co_department_ids: tuple[str, ...] = (),
) -> RoutingRule | None:
    """Add a rule; None when (category, area prefix) already has one."""
    row = await conn.fetchrow(
        "INSERT INTO routing_rules (category_code, area_prefix, department_id,"
        " co_department_ids) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (category_code, area_prefix) DO NOTHING"
        f" RETURNING {_RULE_COLUMNS}",
        category,
        area_prefix,
        department_id,
        list(co_department_ids),
    )
    return _rule(row) if row else None


# --- liaison units (包联) ------------------------------------------------------------------


async def list_liaison(conn: Conn) -> list[LiaisonUnits]:
    rows = await conn.fetch(
        "SELECT area_prefix, array_agg(department_id ORDER BY position) AS ids"
        " FROM liaison_units GROUP BY area_prefix ORDER BY area_prefix"
    )
    return [LiaisonUnits(r["area_prefix"], tuple(r["ids"])) for r in rows]


async def liaison_covering(conn: Conn, area_path: str) -> list[LiaisonUnits]:
    """The liaison units of the area and of its ancestors (routing takes the deepest)."""
    rows = await conn.fetch(
        "SELECT area_prefix, array_agg(department_id ORDER BY position) AS ids"
        " FROM liaison_units WHERE $1 = area_prefix OR starts_with($1, area_prefix || '/')"
        " GROUP BY area_prefix",
        area_path,
    )
    return [LiaisonUnits(r["area_prefix"], tuple(r["ids"])) for r in rows]


async def replace_liaison(conn: Conn, units: LiaisonUnits) -> None:
    await conn.execute("DELETE FROM liaison_units WHERE area_prefix = $1", units.area_prefix)
    await conn.executemany(
        "INSERT INTO liaison_units (area_prefix, department_id, position) VALUES ($1, $2, $3)",
        [(units.area_prefix, d, i) for i, d in enumerate(units.department_ids, start=1)],
    )


# --- demo data (upserts) ---------------------------------------------------------------


async def upsert_departments(conn: Conn, rows: list[Department]) -> None:
    """The demo seed: create or replace, leaving rows that already match untouched."""
    await conn.executemany(
        "INSERT INTO departments (id, name, kind, areas, contacts) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
        " areas = EXCLUDED.areas, contacts = EXCLUDED.contacts, updated_at = now()"
        " WHERE (departments.name, departments.kind, departments.areas, departments.contacts)"
        " IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.areas, EXCLUDED.contacts)",
        [(d.id, d.name, d.kind, list(d.areas), _contacts_json(d)) for d in rows],
    )


async def upsert_categories(conn: Conn, rows: list[Category]) -> None:
    """Parents must come before their children in ``rows``."""
    await conn.executemany(
        "INSERT INTO categories (code, name, parent_code, department_kind)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,"
        " parent_code = EXCLUDED.parent_code, department_kind = EXCLUDED.department_kind",
        [(c.code, c.name, c.parent_code, c.department_kind) for c in rows],
    )


async def upsert_rules(conn: Conn, rows: list[RoutingRule]) -> None:
    """By (category, area prefix); the ids of ``rows`` are ignored."""
    await conn.executemany(
        "INSERT INTO routing_rules (category_code, area_prefix, department_id,"
        " co_department_ids) VALUES ($1, $2, $3, $4) ON CONFLICT (category_code, area_prefix)"
        " DO UPDATE SET department_id = EXCLUDED.department_id,"
        " co_department_ids = EXCLUDED.co_department_ids",
        [
            (r.category_code, r.area_prefix, r.department_id, list(r.co_department_ids))
            for r in rows
        ],
    )
