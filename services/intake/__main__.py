from pathlib import Path

from services.intake.config import Settings
from services.intake.demo import seed_demo
from services.intake.main import create_app
from shared import cli
from shared.replay import NotReplayable

# python -m services.intake replay refuses, and says why.
NOT_A_PROJECTION = NotReplayable(
    "受理的案件由网格员和社区通过 HTTP 上报、吹哨、核查、结案，事件日志是这些操作的结果而不是来源；从调度、跟踪事件镜像来的状态和时限列依附在这些行上，不能脱离它们单独重建。",
    "intake's cases are reported, whistled, verified and closed over HTTP: the event log is the result of those commands, not their source. The status and deadline columns mirrored from dispatch's and tracking's events live on those rows and cannot be rebuilt apart from them.",
)

if __name__ == "__main__":
    cli.run(
        settings_factory=Settings,
        create_app=create_app,
        migrations_dir=Path(__file__).parent / "migrations",
        seed_demo=seed_demo,
        projection=NOT_A_PROJECTION,
    )
