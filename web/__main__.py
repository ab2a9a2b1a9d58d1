from pathlib import Path

from shared import cli
from web.config import Settings
from web.demo import seed_demo
from web.main import create_app

if __name__ == "__main__":
    cli.run(
        settings_factory=Settings,
        create_app=create_app,
        migrations_dir=Path(__file__).parent / "migrations",
        seed_demo=seed_demo,
    )
