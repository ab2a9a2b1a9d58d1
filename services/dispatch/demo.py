"""Load the demo departments, category catalogue and routing rules (idempotent).

The departments are shared/demo.py's (id, name, kind), here given the areas they serve and
their duty contacts, plus the departments only dispatch knows: a street office (街道办事处)
and a volunteer team (志愿服务队). Names and numbers are fictional."""

from __future__ import annotations

from services.dispatch import repository
from services.dispatch.domain import Department, new_department
from shared import db, demo
from shared.settings import BaseServiceSettings

# Departments only dispatch knows (no routing rule names them): (id, name, kind).
EXTRA_DEPARTMENTS = [
    ("jd-yz", "迎泽街道办事处", "street_office"),
    ("zy-ty", "桃园社区志愿服务队", "volunteer"),
]

# Areas served; a department not listed serves the whole district (YA).
AREAS = {
    "wy-jx": ["YA/YA02/YA0201"],  # 锦绣物业: the 锦绣 compound
    "jd-yz": ["YA/YA01"],
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
    "jd-yz": [("韩晓东", "0351-4091001", "值班领导"), ("杨玉兰", "0351-4091002", "值班员")],
    "zy-ty": [("朱桂英", "0351-4101203", "队长")],
}


def departments() -> list[Department]:
    """Every demo department, checked like an administrator's input."""
    return [new_department(d, name, kind, AREAS.get(d, ["YA"]), CONTACTS.get(d, []))
            for d, name, kind in [*demo.DEPARTMENTS, *EXTRA_DEPARTMENTS]]


async def seed_demo(settings: BaseServiceSettings) -> None:
    conn = await db.connect_once(settings.database_url.get_secret_value())
    try:
        async with conn.transaction():
            await repository.upsert_departments(conn, departments())
            await repository.upsert_categories(conn, list(demo.CATEGORIES))
            await repository.upsert_rules(conn, list(demo.ROUTING_RULES))
    finally:
        await conn.close()
