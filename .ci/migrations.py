"""Keep the two Aerich migration sets (SQLite and PostgreSQL) in step with models.py.

    python .ci/migrations.py check        exit 1 when models.py and either set disagree
    python .ci/migrations.py make NAME    write the next migration for both dialects

Aerich writes SQL in one dialect, so every model change needs a migration per database.
Each dialect runs in its own process (Aerich keeps class-level state) against a scratch copy
of the migrations folder, so `check` never leaves a file behind. PostgreSQL needs a server:
CHECK_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres); nothing is written to it.
"""

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
URLS = {
    "sqlite": "sqlite://:memory:",
    "postgres": os.environ.get("CHECK_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
}


async def pending(dialect: str, location: Path, name: str) -> str:
    """Generate the migration models.py needs in `location`; "" when none is needed."""
    from aerich import Command
    from tortoise import Tortoise

    import vocab

    config = vocab.TORTOISE_ORM
    command = Command(tortoise_config=config, app="models", location=str(location))
    try:
        if not any((location / "models").glob("[0-9]*_*.py")):
            # First migration of a dialect: Aerich's init writes the whole schema.
            await command._do_init(safe=True, offline=True)
            return "initial schema"
        await command.init(offline=True)
        return await command.migrate(name=name, no_input=True, offline=True)
    finally:
        await Tortoise.close_connections()


def run_dialect(dialect: str, mode: str, name: str) -> int:
    """Child process: check or make one dialect's migrations."""
    target = ROOT / "migrations" / dialect
    with tempfile.TemporaryDirectory() as scratch:
        location = Path(scratch) / dialect
        if target.exists():
            shutil.copytree(target, location)
        else:
            location.mkdir()
        change = asyncio.run(pending(dialect, location, name))
        if mode == "check":
            if change:
                print(
                    f"{dialect}: models.py and migrations/{dialect} disagree: run "
                    f"`python .ci/migrations.py make NAME`",
                    file=sys.stderr,
                )
                return 1
            print(f"{dialect}: migrations match models.py")
            return 0
        if change:
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(location, target, ignore=shutil.ignore_patterns("__pycache__"))
            print(f"{dialect}: wrote {change}")
        else:
            print(f"{dialect}: nothing to do")
        return 0


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--dialect":  # child
        dialect, mode_name = sys.argv[2], sys.argv[3]
        mode, _, name = mode_name.partition(":")
        return run_dialect(dialect, mode, name or "update")
    if sys.argv[1:2] == ["check"] and len(sys.argv) == 2:
        mode = "check"
    elif sys.argv[1:2] == ["make"] and len(sys.argv) == 3:
        mode = f"make:{sys.argv[2]}"
    else:
        print(__doc__, file=sys.stderr)
        return 2
    failed = 0
    for dialect, url in URLS.items():
        env = {**os.environ, "DATABASE_URL": url, "MIGRATE_ON_START": "false"}
        child = [sys.executable, __file__, "--dialect", dialect, mode]
        failed |= subprocess.run(child, cwd=ROOT, env=env).returncode
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
