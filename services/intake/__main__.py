from pathlib import Path

from services.intake.config import Settings
from services.intake.demo import seed_demo
from services.intake.main import create_app
from shared import cli

if __name__ == "__main__":
    cli.run(
        settings_factory=Settings,
        create_app=create_app,
        migrations_dir=Path(__file__).parent / "migrations",
        seed_demo=seed_demo,
    )
