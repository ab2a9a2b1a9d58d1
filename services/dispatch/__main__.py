from pathlib import Path

from services.dispatch.config import Settings
from services.dispatch.demo import seed_demo
from services.dispatch.main import create_app
from shared import cli
from shared.replay import NotReplayable

# python -m services.dispatch replay refuses, and says why.
NOT_A_PROJECTION = NotReplayable(
    "派单由吹哨事件产生，但签收、退单、转办、延期、办结都是部门通过 HTTP 下达的命令，路由规则和部门目录也是参考数据；派单表不是事件日志的投影，重放无法重建它。",
    "dispatch's assignments start from whistles, but signing for, rejecting, transferring, extending and resolving are departments' HTTP commands, and the routing rules and catalogue are reference data: the assignments are not a projection of the log.",
)

if __name__ == "__main__":
    cli.run(
        settings_factory=Settings,
        create_app=create_app,
        migrations_dir=Path(__file__).parent / "migrations",
        seed_demo=seed_demo,
        projection=NOT_A_PROJECTION,
    )
