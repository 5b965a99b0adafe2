"""The project's own name and development port: what keeps two projects made from this one apart."""

import shutil
import tempfile
import tomllib
from pathlib import Path

import pytest

from devtools import compose, identity, new
from devtools.deploy.plan import plan
from devtools.errors import ClusterError
from devtools.postgres import cache, postmaster
from devtools.postgres.cluster import LocalCluster
from devtools.postgres.throwaway import throwaway_cluster
from devtools.processes import free_port
from devtools.renaming import Identity, Renamer
from project.configuration import ConfigError, load_config
from tests.helpers import ROOT


def write_pyproject(root, body):
    (root / "pyproject.toml").write_text(body)
    return root


def test_the_name_comes_from_pyproject(tmp_path):
    root = write_pyproject(tmp_path, '[tool.ruff]\nline-length = 1\n\n[tool.devtools]\n# why\nname = "blog"\n')
    assert identity.project_name(root) == "blog"
    assert identity.prefix("tests-pg", root) == "blog-tests-pg-"


@pytest.mark.parametrize(
    "body",
    ["", '[tool.devtools]\nname = "Blog"\n', '[tool.devtools]\nname = "b"\n', "[tool.devtools]\nname = 3\n", "x ="],
)
def test_a_missing_or_unusable_name_is_one_sentence_naming_the_setting(tmp_path, body):
    with pytest.raises(ConfigError, match=r"pyproject.toml.*\[tool.devtools\] name") as error:
        identity.project_name(write_pyproject(tmp_path, body))
    assert "\n" not in str(error.value)


def test_everything_named_outside_the_project_carries_its_name(monkeypatch, tmp_path):
    name = identity.project_name()
    assert compose.command("development", "ps", dry=True)[2:4] == ["-p", f"{name}-development"]
    production = load_config("production", environ={}, require_secrets=False)
    assert plan(production, "registry.example.com/x:1").base == f"{name}-production"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_home() == tmp_path / f"{name}-postgres"


def test_derived_ports_stay_clear_of_15432_and_the_ephemeral_range():
    ports = {identity.derived_port(name) for name in ("shop", "blog", "inventory", "app", "corner-shop")}
    assert len(ports) == 5  # different names, different ports
    assert all(20000 <= port < 30000 for port in ports)  # 15432 below, Linux's 32768-60999 above
    assert identity.derived_port("shop") == identity.derived_port("shop")


def test_a_new_project_steps_past_a_taken_port():
    derived = identity.derived_port("shop")
    assert new.development_port("shop", taken=lambda port: False) == derived
    assert new.development_port("shop", taken=lambda port: port in (derived, derived + 1)) == derived + 2


def test_the_renamer_moves_the_name_and_the_port_but_not_other_numbers():
    # "warehouse", not this project's own name: `inv new` renames that one in this very file.
    renamer = Renamer("project", "shop", "app", "shop", (Identity("warehouse", 15432), Identity("shop", 21234)))
    text = (
        '[tool.devtools]\n# The name.\nname = "warehouse"\n'
        "compose project warehouse-development; family warehouse-production-web; group /ecs/warehouse-production\n"
        "cluster on 127.0.0.1:15432, not 154320; a warehouse-server; ~/.cache/warehouse-postgres\n"
    )
    assert renamer.file("README.md", text) == (
        '[tool.devtools]\n# The name.\nname = "shop"\n'
        "compose project shop-development; family shop-production-web; group /ecs/shop-production\n"
        "cluster on 127.0.0.1:21234, not 154320; a warehouse-server; ~/.cache/shop-postgres\n"
    )


def test_a_port_held_by_another_projects_cluster_names_that_project(monkeypatch, tmp_path):
    other = tmp_path / "blog" / ".local" / "postgres" / "data"
    monkeypatch.setattr(postmaster, "postgres_data_dir", lambda port: other)
    mine = LocalCluster(tmp_path / "mine", port=free_port())
    assert mine.port_holder() == f"another project's cluster at {tmp_path / 'blog'} (`inv db.stop` there stops it)"
    monkeypatch.setattr(postmaster, "postgres_data_dir", lambda port: None)
    assert mine.port_holder() == "another program"


def test_starting_on_a_port_a_running_server_holds_says_whose_it_is():
    # Under /tmp, not pytest's tmp_path: under root the server user must reach the directory.
    parent = Path(tempfile.mkdtemp(prefix=identity.prefix("port-test")))
    parent.chmod(0o755)
    try:
        with throwaway_cluster() as running:
            mine = LocalCluster(parent / "mine", port=running.port)
            with pytest.raises(ClusterError) as error:
                mine.start()
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    message = str(error.value)
    assert f"Port {running.port} on 127.0.0.1 is taken by another PostgreSQL server, data directory" in message
    assert str(running.data_dir) in message and "config/development.json" in message


def test_this_project_is_named_in_its_pyproject():
    with (ROOT / "pyproject.toml").open("rb") as file:
        assert identity.project_name(ROOT) == tomllib.load(file)["tool"]["devtools"]["name"]
