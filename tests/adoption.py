"""Adopting the setup: a generated project whose example is replaced by another domain keeps its tooling tests
green, and two generated projects run side by side.

Slow (two generated projects' full suites, at the same time): run by `nox -s adoption`, not by `nox -s tests`
(pytest collects this file only when it is named, as that session does).

What it does, as a team starting its own app would (README "Make it yours"):

1. `inv new DEST --package blog`; in it, delete the example's files, write two related tables (authors and their
   posts) as models, a view listing posts with their authors, a scenario filling both, and tests of them in
   tests/example/; register the view; let `inv db.migrate` write the migration (on the project's own local
   cluster, on its own port).
2. `inv new DEST --package shop`, the example kept.
3. Both projects' `inv dev` at once, each answering on its own port from its own cluster.
4. At the same time, `nox -s tests lint` in blog (every tooling test unmodified, plus its new domain's) and
   `nox -s tests` in shop; both must pass.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from devtools.processes import free_port
from tests.helpers import ROOT, interrupt, request, start_task
from tests.test_new import project_env

MODELS = '''"""Database models: authors and their posts."""

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from blog.extensions import db


class Author(db.Model):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    posts: Mapped[list["Post"]] = relationship(back_populates="author", order_by="Post.id")


class Post(db.Model):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    author: Mapped[Author] = relationship(back_populates="posts")
'''
VIEW = '''"""Posts, newest first, with their authors."""

import marshmallow as ma

from blog.extensions import db
from blog.models import Post
from blog.openapi import Blueprint

bp = Blueprint("posts", __name__, description="Posts and their authors.")


class PostOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    title = ma.fields.String(required=True)
    author = ma.fields.String(required=True)


class PostList(ma.Schema):
    posts = ma.fields.List(ma.fields.Nested(PostOut), required=True)


@bp.get("/posts")
@bp.alt_response(200, schema=PostList, description="The posts, newest first.", success=True)
def list_posts():
    """List the posts, newest first."""
    posts = db.session.scalars(db.select(Post).order_by(Post.id.desc())).all()
    return {"posts": [{"id": p.id, "title": p.title, "author": p.author.name} for p in posts]}
'''
SCENARIO = '''"""A few authors, each with a handful of posts."""

from devtools.scenarios import copy_rows

DEFAULT_SIZE = 10
POSTS_PER_AUTHOR = 3


def fill(connection, *, size, rng):
    """Load ``size`` authors and POSTS_PER_AUTHOR posts each."""
    copy_rows(connection, "authors", ("name",), ((f"Author {i} {rng.randrange(10_000)}",) for i in range(size)))
    ids = [row[0] for row in connection.exec_driver_sql("SELECT id FROM authors ORDER BY id")]
    posts = ((author, f"Post {n} by {author}") for author in ids for n in range(POSTS_PER_AUTHOR))
    copy_rows(connection, "posts", ("author_id", "title"), posts)
'''
TESTS = '''"""The blog's own tests."""

from collections import Counter

import pytest


@pytest.mark.scenario("posts", size=4, seed=3)
def test_posts_come_newest_first_with_their_authors(client):
    posts = client.get("/posts").json["posts"]
    assert [p["id"] for p in posts] == sorted((p["id"] for p in posts), reverse=True)
    assert sorted(Counter(p["author"] for p in posts).values()) == [3, 3, 3, 3]


def test_no_posts_is_an_empty_list(client):
    assert client.get("/posts").json == {"posts": []}


def test_a_post_belongs_to_its_author(db_session):
    from blog.models import Author, Post

    author = Author(name="Ada")
    db_session.add(Post(title="Notes", author=author))
    db_session.commit()
    assert [p.title for p in db_session.get(Author, author.id).posts] == ["Notes"]
'''


def run(dest: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` in ``dest`` with its own environment; fail with its output when it fails."""
    result = subprocess.run(
        [sys.executable, *args], cwd=dest, env=project_env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def workdir():
    parent = Path(tempfile.mkdtemp(prefix="project-adoption-"))
    parent.chmod(0o755)  # the postgres OS user (under root) must reach the projects' .local/postgres
    yield parent
    for tree in parent.iterdir():
        subprocess.run([sys.executable, "-m", "invoke", "db.stop"], cwd=tree, capture_output=True, timeout=60)
    shutil.rmtree(parent, ignore_errors=True)


def generate(workdir: Path, package: str) -> tuple[Path, int]:
    """Run `inv new` for ``package``; return the project and its development port."""
    dest = workdir / package
    created = run(ROOT, "-m", "invoke", "new", str(dest), "--package", package)
    port = int(re.search(r"listens on 127\.0\.0\.1:(\d+)", created.stdout).group(1))
    return dest, port


def replace_the_example(blog: Path) -> None:
    """Delete the example's files (README "Make it yours") and write the blog's domain in their place."""
    for name in ("blog/api/users.py", "scenarios/users.py", "scenarios/volume.py"):
        (blog / name).unlink()
    for revision in (blog / "migrations" / "versions").glob("*_add_users_table.py"):
        revision.unlink()
    shutil.rmtree(blog / "tests" / "example")
    (blog / "tests" / "example").mkdir()
    (blog / "tests" / "example" / "__init__.py").write_text("")
    (blog / "tests" / "example" / "test_posts.py").write_text(TESTS)
    (blog / "blog" / "models.py").write_text(MODELS)
    (blog / "blog" / "api" / "posts.py").write_text(VIEW)
    (blog / "scenarios" / "posts.py").write_text(SCENARIO)  # not named like the package: inv new renames that
    app = (blog / "blog" / "app.py").read_text()
    app = app.replace(
        "from blog.api import errors, health, main, users", "from blog.api import errors, health, main, posts"
    )
    app = app.replace("[main.bp, users.bp, health.bp]", "[main.bp, posts.bp, health.bp]")
    (blog / "blog" / "app.py").write_text(app)
    pyproject = (blog / "pyproject.toml").read_text()
    pyproject = pyproject.replace('"blog/api/users.py"', '"blog/api/posts.py"')
    pyproject = pyproject.replace('"tests/example/test_users_api.py"', '"tests/example/test_posts.py"')
    (blog / "pyproject.toml").write_text(pyproject)


def test_an_adopted_project_and_a_second_one_run_side_by_side(workdir):
    blog, blog_port = generate(workdir, "blog")
    shop, shop_port = generate(workdir, "shop")
    assert blog_port != shop_port
    replace_the_example(blog)
    migrated = run(blog, "-m", "invoke", "db.migrate", "-m", "add authors and posts")
    written = re.search(r"Wrote (\S+);", migrated.stdout).group(1)
    revision = (blog / written).read_text() if not Path(written).is_absolute() else Path(written).read_text()
    assert "op.create_table('authors'" in revision and "op.create_table('posts'" in revision
    assert "sa.ForeignKeyConstraint(['author_id'], ['authors.id']" in revision
    run(blog, "-m", "ruff", "check", "--fix", "--quiet", ".")  # as a developer would before committing
    run(blog, "-m", "ruff", "format", "--quiet", ".")

    servers = []
    try:
        for tree in (blog, shop):
            port = free_port()
            servers.append(start_task("dev", "--port", str(port), url=f"http://127.0.0.1:{port}", cwd=tree))
            status, body = request(f"http://127.0.0.1:{port}/readyz")
            assert status == 200 and json.loads(body)["status"] == "ready", body
        suites = [
            subprocess.Popen(
                [sys.executable, "-m", "nox", "-s", *sessions],
                cwd=tree,
                env=project_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for tree, sessions in ((blog, ("tests", "lint")), (shop, ("tests",)))
        ]
        outputs = [suite.communicate(timeout=3600)[0] for suite in suites]
    finally:
        for server in servers:
            interrupt(server)
    for tree, output in zip((blog, shop), outputs, strict=True):
        print(f"--- {tree.name}\n{output[-3000:]}")  # both, whichever fails
    failed = [
        f"{tree.name}:\n{output[-6000:]}"
        for tree, suite, output in zip((blog, shop), suites, outputs, strict=True)
        if suite.returncode
    ]
    assert not failed, "\n".join(failed)
    assert "Session lint was successful" in outputs[0]
