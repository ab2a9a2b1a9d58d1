"""Departments that receive dispatches (派单): five kinds, the areas each serves, duty
contacts; an administrator's description is checked field by field."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.errors import Invalid


class DepartmentKind(StrEnum):
    FUNCTIONAL = "functional"  # 职能部门
    STREET_OFFICE = "street_office"  # 街道办事处
    CO_BUILDING = "co_building"  # 驻区单位 (共建单位)
    PROPERTY = "property"  # 物业企业
    VOLUNTEER = "volunteer"  # 志愿服务队


KIND_ZH: dict[str, str] = {
    DepartmentKind.FUNCTIONAL: "职能部门",
    DepartmentKind.STREET_OFFICE: "街道办事处",
    DepartmentKind.CO_BUILDING: "驻区单位",
    DepartmentKind.PROPERTY: "物业企业",
    DepartmentKind.VOLUNTEER: "志愿服务队",
}


@dataclass(frozen=True)
class Contact:
    """A duty contact (值班联系人) of a department."""

    name: str
    phone: str
    role: str | None = None  # e.g. 值班领导, 值班员


@dataclass(frozen=True)
class Department:
    id: str
    name: str
    kind: str  # a DepartmentKind value
    areas: tuple[str, ...] = ()  # area path prefixes it serves, e.g. "YA/YA02/YA0201"
    contacts: tuple[Contact, ...] = ()  # duty contacts


DEPARTMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
AREA_PATH = re.compile(r"[A-Za-z0-9-]+(?:/[A-Za-z0-9-]+)*")
PHONE = re.compile(r"[0-9+-]{5,20}")
MAX_NAME, MAX_AREAS, MAX_AREA_PATH, MAX_CONTACTS, MAX_CONTACT_ROLE = 100, 50, 200, 20, 32


def _invalid(field: str, zh: str, en: str) -> Invalid:
    return Invalid(f"{field}：{zh}", f"{field}: {en}", code="invalid_department")


def new_department(
    department_id: str,
    name: str,
    kind: str,
    areas: Sequence[str],
    contacts: Sequence[tuple[str, str, str | None]],
) -> Department:
    """A department as an administrator describes it, checked field by field; the first
    problem is raised as ``Invalid`` naming the field (Chinese first). Names and contacts are
    trimmed; repeated areas are kept once, in order."""
    if not DEPARTMENT_ID.fullmatch(department_id):
        raise _invalid(
            "id",
            "部门编号须为1–64位字母、数字、下划线或连字符",
            "must be 1-64 letters, digits, '_' or '-'",
        )
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise _invalid(
            "name",
            f"部门名称不能为空，且不超过{MAX_NAME}字",
            f"must be non-blank and at most {MAX_NAME} characters",
        )
    if kind not in {k.value for k in DepartmentKind}:
        allowed = "、".join(f"{k}（{zh}）" for k, zh in KIND_ZH.items())
        raise _invalid(
            "kind",
            f"部门类型“{kind}”无效，应为{allowed}之一",
            f"unknown kind '{kind}'; one of {', '.join(DepartmentKind)}",
        )
    if not areas:
        raise _invalid("areas", "至少填写一个服务区域", "at least one area path is required")
    if len(areas) > MAX_AREAS:
        raise _invalid("areas", f"服务区域不超过{MAX_AREAS}个", f"at most {MAX_AREAS} areas")
    kept: list[str] = []
    for i, area in enumerate(areas):
        if len(area) > MAX_AREA_PATH or not AREA_PATH.fullmatch(area):
            raise _invalid(
                f"areas[{i}]",
                f"区域路径“{area}”格式无效，应为以“/”连接的区域编码，如YA/YA01/YA0101",
                f"'{area}' is not an area path (codes of [A-Za-z0-9-] joined by '/')",
            )
        if area not in kept:
            kept.append(area)
    if len(contacts) > MAX_CONTACTS:
        raise _invalid(
            "contacts", f"值班联系人不超过{MAX_CONTACTS}个", f"at most {MAX_CONTACTS} contacts"
        )
    people: list[Contact] = []
    for i, (raw_name, raw_phone, raw_role) in enumerate(contacts):
        c_name, phone = raw_name.strip(), raw_phone.strip()
        role = (raw_role or "").strip() or None
        if not c_name or len(c_name) > MAX_NAME:
            raise _invalid(
                f"contacts[{i}].name",
                "联系人姓名不能为空",
                f"must be non-blank and at most {MAX_NAME} characters",
            )
        if not PHONE.fullmatch(phone) or not any(ch.isdigit() for ch in phone):
            raise _invalid(
                f"contacts[{i}].phone",
                f"电话“{phone}”格式无效，应为5–20位数字、“+”或“-”，如0351-1234567",
                f"'{phone}' is not a phone number (5-20 of digits, '+', '-')",
            )
        if role is not None and len(role) > MAX_CONTACT_ROLE:
            raise _invalid(
                f"contacts[{i}].role",
                f"职务不超过{MAX_CONTACT_ROLE}字",
                f"at most {MAX_CONTACT_ROLE} characters",
            )
        people.append(Contact(c_name, phone, role))
    return Department(department_id, name, kind, tuple(kept), tuple(people))
