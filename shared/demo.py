"""Demo reference data: a fictional district sized like the districts in the handbook's
DOMAIN.md (4 streets, 16 communities, 142 grids), its departments, a first category
catalogue and routing rules. Pure data; each service seeds its own part.

Area paths are codes from district to grid joined by '/': ``YA/YA01/YA0101/YA0101-03``.
"""

from __future__ import annotations

from dataclasses import dataclass

DISTRICT = ("YA", "榆安区")

STREETS = [
    ("YA01", "迎泽街道", ["桃园社区", "柳巷社区", "新民社区", "双塔社区"]),
    ("YA02", "锦园街道", ["锦绣社区", "园丁社区", "朝阳社区", "丰收社区"]),
    ("YA03", "东湖街道", ["湖滨社区", "望湖社区", "清泉社区", "莲池社区"]),
    ("YA04", "北城街道", ["北关社区", "城西社区", "安康社区", "和平社区"]),
]

# Grids per community: 142 in all, as in one of the reported districts.
GRIDS_PER_COMMUNITY = [9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 8, 8]


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    level: str  # district | street | community | grid
    parent: str | None
    path: str


def areas() -> list[Area]:
    district_code, district_name = DISTRICT
    out = [Area(district_code, district_name, "district", None, district_code)]
    counts = iter(GRIDS_PER_COMMUNITY)
    for street_code, street_name, communities in STREETS:
        street_path = f"{district_code}/{street_code}"
        out.append(Area(street_code, street_name, "street", district_code, street_path))
        for i, community_name in enumerate(communities, start=1):
            code = f"{street_code}{i:02d}"
            path = f"{street_path}/{code}"
            out.append(Area(code, community_name, "community", street_code, path))
            for g in range(1, next(counts) + 1):
                grid = f"{code}-{g:02d}"
                out.append(Area(grid, f"{community_name}第{g}网格", "grid", code, f"{path}/{grid}"))
    return out


# (code, name, parent code or None). Codes follow the manner of GB/T 30428 (数字化城市管理
# 信息系统 部件和事件分类): a class letter (部件 components "C", 事件 events "E"), a two-digit
# 大类 and a two-digit 小类.
CATEGORIES = [
    ("C01", "部件·公用设施", None),
    ("C0101", "路灯损坏", "C01"),
    ("C0102", "井盖缺失或破损", "C01"),
    ("C0103", "供水管道漏水", "C01"),
    ("C0104", "燃气管道隐患", "C01"),
    ("C0105", "通信线缆脱落", "C01"),
    ("C02", "部件·道路交通", None),
    ("C0201", "道路破损", "C02"),
    ("C0202", "交通标志损坏", "C02"),
    ("C0203", "公交站亭损坏", "C02"),
    ("C0204", "共享单车乱停放", "C02"),
    ("C03", "部件·市容环境设施", None),
    ("C0301", "垃圾桶破损或满溢", "C03"),
    ("C0302", "公厕设施损坏", "C03"),
    ("C04", "部件·园林绿化", None),
    ("C0401", "树木倒伏或枯死", "C04"),
    ("C0402", "绿地毁损", "C04"),
    ("C05", "部件·房屋及小区设施", None),
    ("C0501", "电梯故障", "C05"),
    ("C0502", "楼道照明损坏", "C05"),
    ("C0503", "外墙脱落隐患", "C05"),
    ("E01", "事件·市容环境", None),
    ("E0101", "乱堆物料", "E01"),
    ("E0102", "暴露垃圾", "E01"),
    ("E0103", "楼道杂物", "E01"),
    ("E0104", "违规户外广告", "E01"),
    ("E0105", "私搭乱建", "E01"),
    ("E02", "事件·安全隐患", None),
    ("E0201", "消防隐患", "E02"),
    ("E0202", "电动车违规充电", "E02"),
    ("E0203", "高空坠物隐患", "E02"),
    ("E03", "事件·矛盾纠纷", None),
    ("E0301", "邻里纠纷", "E03"),
    ("E0302", "物业纠纷", "E03"),
    ("E0303", "劳资纠纷", "E03"),
    ("E04", "事件·街面秩序", None),
    ("E0401", "占道经营", "E04"),
    ("E0402", "流浪乞讨", "E04"),
    ("E0403", "噪声扰民", "E04"),
    ("E05", "事件·民生服务", None),
    ("E0501", "独居老人帮扶", "E05"),
    ("E0502", "困难群众救助", "E05"),
]

# The kind of department responsible by default (默认责任主体), per 大类 with 小类 overrides:
# functional 职能部门 | street_office 街道办事处 | co_building 驻区单位 | property 物业企业 |
# volunteer 志愿服务队. Routing uses it for the department of that kind serving the case's
# area (the compound's property company, the street's office) when no rule is as specific.
CATEGORY_KINDS = {
    "C01": "co_building",
    "C0102": "functional",
    "C02": "functional",
    "C03": "functional",
    "C04": "functional",
    "C05": "property",
    "C0503": "functional",
    "E01": "functional",
    "E0103": "property",
    "E02": "functional",
    "E0203": "property",
    "E03": "street_office",
    "E0302": "functional",
    "E0303": "functional",
    "E04": "functional",
    "E05": "street_office",
    "E0501": "volunteer",
}

# (id, name, kind)
DEPARTMENTS = [
    ("cg", "榆安区城市管理局", "functional"),
    ("zj", "榆安区住房和城乡建设局", "functional"),
    ("xf", "榆安区消防救援大队", "functional"),
    ("gs", "榆安供水公司", "co_building"),
    ("gd", "榆安供电公司", "co_building"),
    ("sf", "榆安区司法局", "functional"),
    ("jt", "榆安区交通运输局", "functional"),
    ("wy-jx", "锦绣物业公司", "property"),
    ("rq", "榆安燃气公司", "co_building"),
    ("tx", "榆安通信公司", "co_building"),
    ("yl", "榆安区园林绿化中心", "functional"),
    ("mz", "榆安区民政局", "functional"),
    ("rs", "榆安区人力资源和社会保障局", "functional"),
    ("hb", "榆安区生态环境分局", "functional"),
    ("wy-hb", "湖滨物业公司", "property"),
    ("jd-yz", "迎泽街道办事处", "street_office"),
    ("jd-jy", "锦园街道办事处", "street_office"),
    ("jd-dh", "东湖街道办事处", "street_office"),
    ("jd-bc", "北城街道办事处", "street_office"),
    ("zy-ty", "桃园社区志愿服务队", "volunteer"),
]

# (category code, area path prefix, lead department id, co-handler ids): the most specific
# area wins; a rule for a 小类 beats one for its 大类 at the same area.
ROUTING_RULES = [
    ("C0101", "YA", "gd", ()),
    ("C0102", "YA", "cg", ()),
    ("C0103", "YA", "gs", ()),
    ("C0104", "YA", "rq", ("xf",)),
    ("C0105", "YA", "tx", ()),
    ("C02", "YA", "jt", ()),
    ("C0204", "YA", "cg", ("jt",)),
    ("C03", "YA", "cg", ()),
    ("C04", "YA", "yl", ()),
    ("C0501", "YA", "zj", ()),
    ("C0503", "YA", "zj", ("cg",)),
    ("E0101", "YA", "cg", ()),
    ("E0102", "YA", "cg", ()),
    ("E0103", "YA", "zj", ()),
    ("E0104", "YA", "cg", ()),
    ("E0105", "YA", "cg", ("zj",)),
    ("E0201", "YA", "xf", ()),
    ("E0202", "YA", "xf", ()),
    ("E0302", "YA", "zj", ()),
    ("E0303", "YA", "rs", ()),
    ("E0401", "YA", "cg", ()),
    ("E0402", "YA", "mz", ()),
    ("E0403", "YA", "hb", ("cg",)),
]

# Liaison units (包联单位, "四包一") of some communities, in order: routing's fallback.
LIAISON_UNITS = [
    ("YA/YA01/YA0101", ("gd", "rs")),
    ("YA/YA02/YA0201", ("gs", "tx")),
    ("YA/YA03/YA0302", ("rq", "hb")),
]

# Notify's recipients: each department's duty desk, and the district's supervisors.
# (id, name, kind, department id or None, area path or None)
RECIPIENTS = [
    *[(f"duty-{d}", f"{name}值班室", "department", d, None) for d, name, _ in DEPARTMENTS],
    ("sup-district", "区指挥中心督办科", "supervisor", None, "YA"),
    ("sup-ya01", "迎泽街道督办", "supervisor", None, "YA/YA01"),
]


@dataclass(frozen=True)
class DemoUser:
    subject: str
    name: str
    role: str  # a shared.auth.Role value
    area: str
    department_id: str | None = None
    grids: tuple[str, ...] = ()


# One user for every role over the demo jurisdiction (`make token USER=<subject>`).
USERS = [
    DemoUser(
        "wangfang",
        "网格员王芳",
        "grid_worker",
        "YA/YA01/YA0101/YA0101-03",
        grids=("YA/YA01/YA0101/YA0101-03", "YA/YA01/YA0101/YA0101-04"),
    ),
    DemoUser("lihua", "网格员李华", "grid_worker", "YA/YA03/YA0302/YA0302-04"),
    DemoUser("taoyuan", "桃园社区书记", "community", "YA/YA01/YA0101"),
    DemoUser("jinxiu", "锦绣社区书记", "community", "YA/YA02/YA0201"),
    DemoUser("yingze", "迎泽街道网格中心", "street", "YA/YA01"),
    DemoUser("donghu", "东湖街道网格中心", "street", "YA/YA03"),
    DemoUser("command", "区综合指挥中心", "district", "YA"),
    DemoUser("supervisor", "区委组织部督办科", "supervisor", "YA"),
    DemoUser("sup-yingze", "迎泽街道督办", "supervisor", "YA/YA01"),
    DemoUser("admin", "系统管理员", "admin", "YA"),
    *[
        DemoUser(f"{dept}-duty", f"{name}值班员", "department", "YA", department_id=dept)
        for dept, name, _ in DEPARTMENTS
    ],
]
