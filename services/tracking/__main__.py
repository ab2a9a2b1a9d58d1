from pathlib import Path

from services.tracking.api.backtest import backtest_command
from services.tracking.config import Settings
from services.tracking.demo import seed_demo
from services.tracking.main import create_app
from services.tracking.repository.replay import PROJECTION
from shared import cli

if __name__ == "__main__":
    cli.run(
        settings_factory=Settings,
        create_app=create_app,
        migrations_dir=Path(__file__).parent / "migrations",
        seed_demo=seed_demo,
        projection=PROJECTION,
        commands={"backtest": backtest_command},
    )
