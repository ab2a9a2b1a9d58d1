"""Load the demo departments, category catalogue, routing rules and liaison units
(idempotent).

The departments are shared/demo.py's (id, name, kind), here given the areas they serve and
their duty contacts. Names and numbers are fictional."""

from __future__ import annotations

from services.dispatch import repository
from services.dispatch.domain import (
    Category,
    Department,
    LiaisonUnits,
    RoutingRule,
    new_department,
)
from shared import db, demo
from shared.settings import BaseServiceSettings

# Areas served; a department not listed serves the whole district (YA).
AREAS = {
    "wy-jx": ["YA/YA02/YA0201"],  # 锦绣物业: the 锦绣 compound
    "wy-hb": ["YA/YA03/YA0301"],  # 湖滨物业: the 湖滨 compound
    "jd-yz": ["YA/YA01"],
    "jd-jy": ["YA/YA02"],
    "jd-dh": ["YA/YA03"],
    "jd-bc": ["YA/YA04"],
    "zy-ty": ["YA/YA01/YA0101"],
}

# Duty contacts (值班联系人): (name, phone, role).
CONTACTS: dict[str, list[tuple[str, str, str | None]]] = {
    "cg": [("赵建国", "0351-4012301", "值班领导"), ("钱晓燕", "0351-4012302", "值班员")],
    "zj": [("孙立伟", "0351-4023311", "值班领导"), ("李梅", "0351-4023312", "值班员")],
    "xf": [("周强", "0351-4030119", "值班领导"), ("吴凯", "0351-4030120", "值班员")],
    "gs": [("郑海涛", "0351-4041234", "调度值班")],
    "gd": [("王志刚", "0351-4059598", "调度值班"), ("冯丽", "0351-4059599", "值班员")],
    "sf": [("陈静", "0351-4061148", "值班员")],
    "jt": [("褚伟", "0351-4072231", "值班领导"), ("卫红", "0351-4072232", "值班员")],
    "wy-jx": [("蒋文斌", "0351-4085566", "物业经理"), ("沈小芳", "0351-4085567", "客服值班")],
    "rq": [("韩磊", "0351-4110119", "抢修调度")],
    "tx": [("曹阳", "0351-4121000", "客服值班")],
    "yl": [("严红梅", "0351-4132201", "值班员")],
    "mz": [("华建平", "0351-4143301", "值班员")],
    "rs": [("金晓光", "0351-4154401", "值班员")],
    "hb": [("魏东", "0351-4165501", "值班领导"), ("陶静", "0351-4165502", "值班员")],
    "wy-hb": [("姜涛", "0351-4176601", "物业经理")],
    "jd-yz": [("韩晓东", "0351-4091001", "值班领导"), ("杨玉兰", "0351-4091002", "值班员")],
    "jd-jy": [("戚志强", "0351-4092001", "值班领导")],
    "jd-dh": [("谢丽君", "0351-4093001", "值班领导")],
    "jd-bc": [("邹国庆", "0351-4094001", "值班领导")],
    "zy-ty": [("朱桂英", "0351-4101203", "队长")],
}


def departments() -> list[Department]:
    """Every demo department, checked like an administrator's input."""
    return [
        new_department(d, name, kind, AREAS.get(d, ["YA"]), CONTACTS.get(d, []))
        for d, name, kind in demo.DEPARTMENTS
    ]


def categories() -> list[Category]:
    """The catalogue, parents first, with the default responsible kinds."""
    return [
        Category(code, name, parent, demo.CATEGORY_KINDS.get(code))
        for code, name, parent in demo.CATEGORIES
    ]


def rules() -> list[RoutingRule]:
    return [RoutingRule(0, c, area, lead, tuple(co)) for c, area, lead, co in demo.ROUTING_RULES]


async def seed_demo(settings: BaseServiceSettings) -> None:
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        async with conn.transaction():
            await repository.upsert_departments(conn, departments())
            await repository.upsert_categories(conn, categories())
            await repository.upsert_rules(conn, rules())
            for area, units in demo.LIAISON_UNITS:
                await repository.replace_liaison(conn, LiaisonUnits(area, units))
    finally:
        await conn.close()
