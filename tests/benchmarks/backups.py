"""Benchmarks of backups and upgrades on 100,000 users: the project's dump and restore against plain pg_dump and
pg_restore, and the two ways of moving a cluster to a newer major against each other."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from pathlib import Path

from tests.benchmarks.harness import Measurement, interleaved, ratio_spread, server_with_database, timed

USERS = 100_000
FILL = (
    "INSERT INTO users (email, name) SELECT 'user' || n || '@example.com', 'User ' || n "
    "FROM generate_series(1, %s) AS n"
)


def fill(settings: dict, dbname: str) -> None:
    from devtools.databases import connect

    with contextlib.closing(connect(settings, dbname=dbname)) as conn, conn, conn.cursor() as cur:
        cur.execute(FILL, (USERS,))


def compared(row_id: str, name: str, a: list[float], b: list[float], note: str) -> Measurement:
    """Return the row comparing the best times of ours (``a``) and the plain client's (``b``)."""
    return Measurement(
        row_id, name, f"{min(a):.2f} s", f"{min(b):.2f} s", min(a) / min(b), "<= 1.3", note, ratio_spread(a, b)
    )


def bench_backups() -> list[Measurement]:
    """B1-B2: `inv db.dump` and `inv db.restore` against plain pg_dump and pg_restore; B3: pg_upgrade against a
    whole-cluster dump for `inv db.upgrade-cluster`."""
    from devtools.backups.clients import client_environ, run_client, server_major
    from devtools.backups.dump import dump
    from devtools.backups.restore import restore
    from devtools.databases import admin_cursor, drop_database, owner_mark
    from devtools.target import resolve

    rows = []
    with server_with_database(durable=True) as (cluster, config), tempfile.TemporaryDirectory() as scratch:
        target = resolve(config)
        fill(target.admin(), target.database)
        major = server_major(target.admin())
        paths = iter(range(100))

        def ours_dump():
            return dump(target, Path(scratch) / f"ours-{next(paths)}.dump")

        def plain_dump():
            out = Path(scratch) / f"plain-{next(paths)}.dump"
            env = client_environ(target.admin(), target.database)
            run_client("pg_dump", ["-Fc", "-d", target.database, "-f", str(out)], env, major, major)

        a, b = interleaved(ours_dump, plain_dump, rounds=2)
        size = next(Path(scratch).glob("ours-*")).stat().st_size
        note = f"{USERS:,} users, {size / 1e6:.1f} MB"
        rows.append(compared("B1", "db.dump / pg_dump -Fc", a, b, note))
        dumpfile = next(Path(scratch).glob("ours-*"))
        names = iter(range(100))

        def ours_restore():
            restore(dumpfile, target, database=f"bench_ours_{next(names)}")

        def plain_restore():
            name = f"bench_plain_{next(names)}"
            with admin_cursor(target.admin()) as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
            env = client_environ(target.admin(), name)
            run_client("pg_restore", ["--no-owner", "-d", name, str(dumpfile)], env, major, major)

        a, b = interleaved(ours_restore, plain_restore, rounds=2)
        rows.append(compared("B2", "db.restore / createdb + pg_restore", a, b, note))
        with admin_cursor(target.admin()) as cur:
            for n in range(4):
                with contextlib.suppress(Exception):
                    drop_database(cur, f"bench_ours_{n}", mark=owner_mark(config.name))
    rows += bench_upgrade()
    return rows


def bench_upgrade() -> list[Measurement]:
    """B3: moving a cluster of the oldest major found to the newest, by pg_upgrade and by a whole-cluster dump."""
    from devtools.databases import admin_cursor, connect
    from devtools.postgres import upgrade
    from devtools.postgres.cluster import LocalCluster
    from devtools.processes import free_port
    from tests.test_upgrade import MAJORS

    if len(MAJORS) < 2:
        return []
    times = {}
    for method in ("pg_upgrade", "dump"):
        parent = Path(tempfile.mkdtemp(prefix="project-bench-upgrade-"))
        parent.chmod(0o711)
        try:
            cluster = LocalCluster(parent / "pg", port=free_port(), major=MAJORS[0])
            cluster.start()
            settings = {**cluster.connection(), "POSTGRES_DB": "postgres"}
            with admin_cursor(settings) as cur:
                cur.execute("CREATE DATABASE bench")
            with contextlib.closing(connect(settings, dbname="bench")) as conn, conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE, name text)")
                cur.execute(FILL, (USERS,))
            target = LocalCluster(cluster.base_dir, port=cluster.port, major=MAJORS[-1])
            plan = upgrade.plan(target, method=method)
            times[method] = timed(lambda: upgrade.upgrade(target, plan))  # noqa: B023
            target.stop()
        finally:
            for path in parent.iterdir():
                LocalCluster(path, port=0).destroy()
            subprocess.run(["rm", "-rf", str(parent)], check=False)
    a, b = times["pg_upgrade"], times["dump"]
    note = f"{USERS:,} users, PostgreSQL {MAJORS[0]} to {MAJORS[-1]}"
    return [Measurement("B3", "upgrade-cluster: pg_upgrade / dump", f"{a:.1f} s", f"{b:.1f} s", a / b, "<= 2.0", note)]
