"""Move a cluster to another PostgreSQL major, keeping every database, role and mark.

With ``pg_upgrade`` (when the new major's binaries have it), or by dumping the whole old cluster into a new one
(``pg_dumpall`` into ``psql``): both need the old major's server binaries to read the old data. The old cluster's
directory is renamed aside first and kept there until the user removes it; if anything fails, the new cluster is
deleted and the old directory goes back where it was. The superuser's password (its passfile) carries over, as
the roles do.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from psycopg2 import sql

from devtools.errors import ClusterError
from devtools.postgres.binaries import binaries_major, find_bindir
from devtools.postgres.cluster import LocalCluster
from devtools.postgres.credentials import passfield
from devtools.postgres.safety import server_environ, write_private
from devtools.processes import free_port

METHODS = ("auto", "pg_upgrade", "dump")


@dataclass(frozen=True)
class UpgradePlan:
    """What an upgrade will do: from which major to which, how, and where the old cluster goes."""

    base_dir: Path
    old_major: int
    new_major: int
    old_bindir: Path
    new_bindir: Path
    method: str
    aside: Path

    def __str__(self) -> str:
        how = "pg_upgrade" if self.method == "pg_upgrade" else "a dump of every database restored into a new cluster"
        return (
            f"The PostgreSQL {self.old_major} cluster in {self.base_dir} moves to PostgreSQL {self.new_major} by "
            f"{how} (old binaries {self.old_bindir}, new {self.new_bindir}); the old cluster is kept in "
            f"{self.aside} until you remove it."
        )


def plan(cluster: LocalCluster, method: str = "auto", now: datetime.datetime | None = None) -> UpgradePlan | None:
    """Return the plan to move ``cluster`` to its declared major, None when it is already there or has no data;
    raise a ClusterError saying what is missing when it cannot be done here."""
    if method not in METHODS:
        raise ClusterError(f"--method must be one of {', '.join(METHODS)}, got {method!r}.")
    old_major = cluster.data_major()
    if old_major is None:
        return None
    new_bindir = find_bindir(cluster.major)
    new_major = binaries_major(new_bindir)
    if cluster.major is not None and new_major != cluster.major:
        raise ClusterError(
            f"PostgreSQL {cluster.major} is declared (POSTGRES_MAJOR_VERSION) but its binaries were not found: "
            f"install it, or set POSTGRES_BINDIR to its bin directory."
        )
    if new_major == old_major:
        return None
    if new_major is None or new_major < old_major:
        raise ClusterError(
            f"The cluster in {cluster.base_dir} was made by PostgreSQL {old_major}, newer than the PostgreSQL "
            f"{new_major} to move to: PostgreSQL cannot move data to an older major; dump it with `inv db.dump`."
        )
    old_bindir = old_binaries(old_major)
    has_pg_upgrade = (new_bindir / "pg_upgrade").is_file()
    if method == "pg_upgrade" and not has_pg_upgrade:
        raise ClusterError(f"{new_bindir} has no pg_upgrade; run with --method dump.")
    chosen = "pg_upgrade" if method == "pg_upgrade" or (method == "auto" and has_pg_upgrade) else "dump"
    stamp = (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%dT%H%M%SZ")
    aside = cluster.base_dir.with_name(f"{cluster.base_dir.name}-{old_major}-{stamp}")
    return UpgradePlan(cluster.base_dir, old_major, new_major, old_bindir, new_bindir, chosen, aside)


def old_binaries(major: int) -> Path:
    """Return the bin directory of PostgreSQL ``major``'s server, needed to read a cluster it made."""
    saved = os.environ.pop("POSTGRES_BINDIR", None)  # it names the new major's binaries, not the old's
    try:
        bindir = find_bindir(major)
    finally:
        if saved is not None:
            os.environ["POSTGRES_BINDIR"] = saved
    if binaries_major(bindir) != major:
        raise ClusterError(
            f"Moving the cluster needs PostgreSQL {major}'s server binaries to read its data, and none were found: "
            f"install PostgreSQL {major} (apt-get install postgresql-{major}) and run the command again."
        )
    return bindir


def upgrade(cluster: LocalCluster, upgrade_plan: UpgradePlan) -> LocalCluster:
    """Carry out ``upgrade_plan`` on ``cluster`` (stopped first, started again if it ran); return the new one."""
    old = LocalCluster(cluster.base_dir, port=cluster.port, host=cluster.host, superuser=cluster.superuser)
    old.bindir = upgrade_plan.old_bindir
    was_running = old.stop()
    if os.path.lexists(upgrade_plan.aside):
        raise ClusterError(f"{upgrade_plan.aside} already exists; move it away and run the command again.")
    password = old.password()
    os.rename(cluster.base_dir, upgrade_plan.aside)
    # Both servers run on ports of their own meanwhile; a passfile names exactly one address, so each gets its own.
    old = LocalCluster(upgrade_plan.aside, port=free_port(), superuser=cluster.superuser)
    old.bindir = upgrade_plan.old_bindir
    old.write_passfile(password)
    new = LocalCluster(cluster.base_dir, port=free_port(), superuser=cluster.superuser)
    new.bindir = upgrade_plan.new_bindir
    moved = LocalCluster(cluster.base_dir, cluster.port, cluster.host, cluster.superuser, major=upgrade_plan.new_major)
    try:
        new.init()
        adopt_password(new, password)
        if upgrade_plan.method == "pg_upgrade":
            run_pg_upgrade(old, new, password)
        else:
            copy_by_dump(old, new)
    except BaseException:
        old.stop()
        new.destroy()
        os.rename(upgrade_plan.aside, cluster.base_dir)
        moved.write_passfile(password)  # the cluster as it was, at its own address
        raise
    moved.write_passfile(password)
    if was_running:
        moved.start()
    return moved


def adopt_password(new: LocalCluster, password: str) -> None:
    """Give the new cluster's superuser the old one's password: the old roles, password hashes included, replace
    the new ones during the move, and the project's commands keep working after it."""
    new.start()
    try:
        params = {"host": new.host, "port": new.port, "user": new.superuser, "passfile": str(new.passfile)}
        with contextlib.closing(psycopg2.connect(**params, dbname="postgres")) as conn, conn, conn.cursor() as cur:
            cur.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(new.superuser), sql.Literal(password))
            )
    finally:
        new.stop()
    new.write_passfile(password)


def match_checksums(old: LocalCluster, new: LocalCluster) -> None:
    """Give the new (stopped) cluster the old one's data checksums setting, which pg_upgrade requires
    (initdb turns them on by default from PostgreSQL 18)."""

    def enabled(cluster: LocalCluster) -> bool:
        out = cluster.run_program("pg_controldata", str(cluster.data_dir)).stdout
        return "Data page checksum version:           0" not in out

    if enabled(old) != enabled(new):
        new.run_program("pg_checksums", "--enable" if enabled(old) else "--disable", "--pgdata", str(new.data_dir))


def run_pg_upgrade(old: LocalCluster, new: LocalCluster, password: str) -> None:
    """Run pg_upgrade from ``old`` to ``new`` (both stopped), copying the data files: the old stay intact."""
    match_checksums(old, new)
    # One password for both (see adopt_password); pg_upgrade runs both servers on its socket directory.
    passfile = new.base_dir / "upgrade.passfile"
    line = ":".join(passfield(f) for f in (str(new.base_dir), "*", "*", new.superuser, password))
    write_private(passfile, line + "\n", owner=new.os_user)
    try:
        done = new.run_program(
            *("pg_upgrade", "--old-datadir", str(old.data_dir), "--new-datadir", str(new.data_dir)),
            *("--old-bindir", str(old.bindir), "--new-bindir", str(new.bindir), "--username", new.superuser),
            *("--old-port", str(old.port), "--new-port", str(new.port), "--socketdir", str(new.base_dir)),
            check=False,
            environ={"PGPASSFILE": str(passfile)},
            cwd=new.base_dir,
        )
        if done.returncode != 0:
            # pg_upgrade says why just above its last line ("Failure, exiting").
            lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
            reason = " ".join(lines[-4:-1]) if len(lines) > 1 else f"exit code {done.returncode}"
            raise ClusterError(f"pg_upgrade failed: {reason}")
    finally:
        passfile.unlink(missing_ok=True)
        # pg_upgrade's script deletes the old cluster; it is kept aside instead, for the user to remove.
        (new.base_dir / "delete_old_cluster.sh").unlink(missing_ok=True)


def copy_by_dump(old: LocalCluster, new: LocalCluster) -> None:
    """Start both clusters, pipe the new major's ``pg_dumpall`` of the old into the new one's ``psql`` (which stops
    at the first error), then stop both.

    The dump creates every role, the superuser included, who exists already in the new cluster: that one
    statement is left out (its ``ALTER ROLE`` with the password still runs).
    """
    old.start()
    new.start()
    try:
        base = server_environ()
        dump_env = {**base, "PGHOST": old.host, "PGPORT": str(old.port), "PGUSER": old.superuser}
        load_env = {**base, "PGHOST": new.host, "PGPORT": str(new.port), "PGUSER": new.superuser}
        existing = f'CREATE ROLE "{new.superuser}";\n'.encode()
        pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        dumping = subprocess.Popen(
            [str(new.bindir / "pg_dumpall"), "--no-password", "--quote-all-identifiers"],
            env={**dump_env, "PGPASSFILE": str(old.passfile)}, **pipe,
        )  # fmt: skip
        loading = subprocess.Popen(
            [str(new.bindir / "psql"), "--no-password", "--quiet", "--dbname", "postgres", "--set", "ON_ERROR_STOP=1"],
            env={**load_env, "PGPASSFILE": str(new.passfile)}, stdin=subprocess.PIPE, **pipe,
        )  # fmt: skip
        with dumping, loading:
            with contextlib.suppress(BrokenPipeError):  # psql stopped at an error: said below
                for line in dumping.stdout:
                    if line != existing:
                        loading.stdin.write(line)
                loading.stdin.close()
            failures = [
                (p, c.wait(), c.stderr.read().decode(errors="replace"))
                for p, c in (("psql", loading), ("pg_dumpall", dumping))
            ]
        for program, code, errors in failures:  # psql first: when it stops, pg_dumpall fails to write
            if code != 0:
                lines = errors.strip().splitlines()
                raise ClusterError(f"{program} failed while copying the cluster: {lines[0] if lines else code}")
    finally:
        old.stop()
        new.stop()
