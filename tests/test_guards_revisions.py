"""Which revision the code expects and which one a database is at, at their edges: no revision, two heads, a
revision the code does not know (a newer release migrated the database), and any migrations directory."""

import pytest
from sqlalchemy import create_engine, text

from project.revisions import MIGRATIONS_DIR, code_head, database_revision, newer_than_code
from project.settings import database_url
from tests.helpers import config_for


def write_revision(directory, revision: str, down: str | None = None) -> None:
    versions = directory / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    (versions / f"{revision}_step.py").write_text(
        f"revision = {revision!r}\ndown_revision = {down!r}\nbranch_labels = None\ndepends_on = None\n\n"
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
    )


@pytest.fixture
def two_heads(tmp_path):
    """A migrations directory whose history forks: base, then 'ccc1' and 'bbb1' both on it."""
    write_revision(tmp_path, "aaa0")
    write_revision(tmp_path, "ccc1", down="aaa0")
    write_revision(tmp_path, "bbb1", down="aaa0")
    return tmp_path


def test_the_code_head_is_the_projects_by_default_and_any_directorys_on_request(two_heads):
    shipped = sorted(p.name.split("_")[0] for p in (MIGRATIONS_DIR / "versions").glob("*.py"))
    assert code_head() is not None and code_head() in shipped and code_head(MIGRATIONS_DIR) == code_head()
    assert code_head(two_heads) == "bbb1,ccc1"  # every head, in one order whatever the files'
    assert code_head(str(two_heads)) == "bbb1,ccc1"


def test_no_revision_means_no_code_head(tmp_path):
    (tmp_path / "versions").mkdir()
    assert code_head(tmp_path) is None


@pytest.mark.parametrize(
    ("revision", "newer"),
    [
        (None, False),  # never migrated
        ("", False),
        ("aaa0", False),  # an older revision the code knows
        ("ccc1", False),
        ("ddd2", True),  # unknown: a newer release migrated it
        ("ddd2,bbb1", False),  # one head the code knows is enough
        ("bbb1,ddd2", False),
        ("ddd2,eee3", True),
    ],
)
def test_a_revision_is_newer_than_the_code_only_when_the_code_knows_none_of_its_heads(two_heads, revision, newer):
    assert newer_than_code(revision, two_heads) is newer


def test_the_projects_own_head_is_not_newer_than_the_code():
    assert newer_than_code(code_head()) is False
    assert newer_than_code("0000unknown") is True


def test_a_database_never_migrated_is_at_no_revision(postgresql_server):
    engine = create_engine(database_url(config_for(postgresql_server, "postgres")))
    try:
        with engine.connect() as connection:
            assert database_revision(connection) is None
    finally:
        engine.dispose()


def test_a_database_is_at_each_of_its_heads_in_order(db_session):
    assert database_revision(db_session.connection()) == code_head()
    db_session.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0000first')"))
    assert database_revision(db_session.connection()) == f"0000first,{code_head()}"
