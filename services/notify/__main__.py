from pathlib import Path

from services.notify.config import Settings
from services.notify.demo import seed_demo
from services.notify.main import create_app
from shared import cli
from shared.replay import NotReplayable

# python -m services.notify replay refuses, and says why.
NOT_A_PROJECTION = NotReplayable(
    "消息由事件生成，但发给谁取决于当时的订阅和免打扰设置，投递（Webhook、邮件、群机器人）是对外的副作用，其尝试记录带有投递时刻；用今天的订阅重放会得到另一批消息，不是可比较的投影。",
    "notify's messages come from events, but who receives them depends on the subscriptions and quiet hours of the moment, and delivering them (webhook, email, chat bot) is an outside effect whose attempts are stamped when made: a replay under today's subscriptions would build other messages, not a comparable projection.",
)

if __name__ == "__main__":
    cli.run(
        settings_factory=Settings,
        create_app=create_app,
        migrations_dir=Path(__file__).parent / "migrations",
        seed_demo=seed_demo,
        projection=NOT_A_PROJECTION,
    )
