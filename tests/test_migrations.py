"""The migration round trip that `nox -s migrations` runs, and the drift it must catch."""

import shutil
from pathlib import Path

from devtools import migration_check
from devtools.migrations import head_revision
from project.revisions import MIGRATIONS_DIR


def test_round_trip_passes_on_the_shipped_migrations():
    lines = []
    assert migration_check.run(out=lines.append) is True
    assert [line.split(" ", 1)[0] for line in lines] == ["ok"] * 5


def copy_migrations(tmp_path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


STRAY_TABLE = """
import sqlalchemy as sa
from alembic import op

revision = "0000straytable"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("stray", sa.Column("nickname", sa.Text()))


def downgrade():
    op.drop_table("stray")
"""


def test_a_migration_that_no_longer_matches_the_models_fails(tmp_path):
    target = copy_migrations(tmp_path)
    (target / "versions" / "0000_stray_table.py").write_text(STRAY_TABLE.format(down=head_revision(str(target))))
    lines = []
    assert migration_check.run(target, out=lines.append) is False
    assert lines[-1].startswith("FAIL models match migrations") and "stray" in lines[-1]


def test_two_heads_fail(tmp_path):
    target = copy_migrations(tmp_path)
    (target / "versions" / "0000_other_head.py").write_text(
        'revision = "0000otherhead"\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n'
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
    )
    lines = []
    assert migration_check.run(target, out=lines.append) is False
    assert lines == [lines[0]] and lines[0].startswith("FAIL one head: expected one head, found")
