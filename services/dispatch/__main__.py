from pathlib import Path

from services.dispatch.config import Settings
from services.dispatch.demo import seed_demo
from services.dispatch.main import create_app
from shared import cli

if __name__ == "__main__":
    cli.run(
        settings_factory=Settings,
        create_app=create_app,
        migrations_dir=Path(__file__).parent / "migrations",
        seed_demo=seed_demo,
    )
