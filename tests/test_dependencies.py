"""The locked requirements: hashes for every package, layers that agree, and the `inv deps.*` tasks run on a
copy of the project (they compile with uv against the package index)."""

import re
import shutil
from pathlib import Path

import pytest
from packaging.version import Version

pytest.importorskip("invoke", reason="the task tests need invoke (requirements/development.txt)")

from devtools import dependencies
from tests.helpers import inv, one_sentence

ROOT = Path(__file__).resolve().parent.parent
LAYERS = dependencies.LAYERS


def compiled_entries(path: Path) -> dict[str, str]:
    """Return ``{pin line: its whole entry}`` (the pin with its hash lines) of a compiled file."""
    entries, current = {}, None
    for line in path.read_text().splitlines():
        if dependencies.PIN.match(line):
            current = line
            entries[current] = ""
        elif current and line.startswith("    --hash="):
            entries[current] += line
        elif not line.startswith("    "):
            current = None
    return entries


@pytest.mark.parametrize("layer", LAYERS)
def test_every_package_of_a_layer_is_pinned_with_hashes(layer):
    entries = compiled_entries(ROOT / "requirements" / f"{layer}.txt")
    assert len(entries) > 10
    unhashed = [pin for pin, hashes in entries.items() if not re.search(r"--hash=sha256:[0-9a-f]{64}", hashes)]
    assert unhashed == []


def test_each_layer_pins_everything_below_it_at_the_same_version():
    pins = dependencies.all_pins(ROOT)
    for lower, upper in zip(LAYERS, LAYERS[1:], strict=False):
        assert {name: pins[upper].get(name) for name in pins[lower]} == pins[lower], f"{upper} disagrees with {lower}"
        assert pins[upper].keys() > pins[lower].keys()


def test_indirect_dependencies_are_pinned():
    production = dependencies.all_pins(ROOT)["production"]
    direct = {name for name, layer in dependencies.direct_names(ROOT).items() if layer == "production"}
    # Flask needs Jinja2, click, itsdangerous and blinker; none is listed in production.in.
    assert {"jinja2", "click", "itsdangerous", "blinker", "markupsafe"} <= production.keys() - direct


def test_every_install_of_a_requirements_file_requires_hashes():
    installs = {
        "docker/Dockerfile": (ROOT / "docker/Dockerfile").read_text(),
        ".ci/run": (ROOT / ".ci/run").read_text(),
        ".github/workflows/ci.yml": (ROOT / ".github/workflows/ci.yml").read_text(),
        "noxfile.py": (ROOT / "noxfile.py").read_text(),
    }
    for name, text in installs.items():
        lines = [line for line in text.splitlines() if "install" in line and re.search(r"-r\b", line)]
        assert lines, f"{name} installs no requirements file"
        assert all("--require-hashes" in line for line in lines), f"{name}: {lines}"


@pytest.fixture
def project(tmp_path):
    """A copy of the project's tasks, tooling and requirements, where the `inv deps.*` tasks may write."""
    for folder in ("devtools", "project", "requirements"):
        shutil.copytree(ROOT / folder, tmp_path / folder)  # with the compiled bytecode: a quicker `inv`
    shutil.copy(ROOT / "tasks.py", tmp_path)
    return tmp_path


def test_check_fails_when_an_input_changes_without_recompiling(project):
    assert dependencies.check(project) == []
    testing_in = project / "requirements/testing.in"
    testing_in.write_text(testing_in.read_text().replace("hypothesis>=", "# hypothesis>="))
    problems = dependencies.check(project)
    assert [p.splitlines()[0] for p in problems] == [
        "--- requirements/testing.txt (committed)",
        "--- requirements/development.txt (committed)",
    ]
    assert all(re.search(r"^-hypothesis==", p, re.M) for p in problems)
    result = inv("deps.check", cwd=project)
    assert result.returncode == 1
    assert "run `inv deps.lock`" in result.stderr


def test_check_fails_when_a_compiled_file_is_edited_by_hand(project):
    production = project / "requirements/production.txt"
    production.write_text(
        re.sub(r"(?m)^(gunicorn==\S+ \\\n    --hash=sha256:)[0-9a-f]", r"\g<1>0", production.read_text(), count=1)
    )
    assert production.read_text() != (ROOT / "requirements/production.txt").read_text()
    assert [p.splitlines()[0] for p in dependencies.check(project)] == ["--- requirements/production.txt (committed)"]


def test_upgrade_moves_one_package_and_names_the_move(project):
    production_in = project / "requirements/production.in"
    original = production_in.read_text()
    newest = Version(dependencies.all_pins(project)["production"]["markupsafe"])
    # Hold MarkupSafe (which Jinja2 needs) back a release, then lift the hold: the old pin stays until an upgrade.
    production_in.write_text(original + f"markupsafe<{newest}\n")
    assert "markupsafe " in inv("deps.lock", cwd=project).stdout
    production_in.write_text(original)
    before = dependencies.all_pins(project)
    assert Version(before["production"]["markupsafe"]) < newest

    result = inv("deps.upgrade", "--package", "markupsafe", cwd=project)
    assert result.returncode == 0, result.stderr
    after = dependencies.all_pins(project)
    for layer in LAYERS:
        names = before[layer].keys() | after[layer].keys()
        assert {name for name in names if before[layer].get(name) != after[layer].get(name)} == {"markupsafe"}
    new = after["production"]["markupsafe"]
    assert Version(new) >= newest
    assert f"markupsafe {before['production']['markupsafe']} -> {new}" in result.stdout
    assert inv("deps.check", cwd=project).returncode == 0


def test_add_puts_a_package_in_its_layer_and_every_layer_above(project):
    before = dependencies.all_pins(project)
    assert "iso8601" not in before["development"]
    result = inv("deps.add", "iso8601>=2", "--layer", "testing", cwd=project)
    assert result.returncode == 0, result.stderr
    after = dependencies.all_pins(project)
    assert after["production"] == before["production"]
    assert after["testing"]["iso8601"] == after["development"]["iso8601"]
    assert f"iso8601 (new) -> {after['testing']['iso8601']}" in result.stdout
    assert "iso8601>=2" in (project / "requirements/testing.in").read_text()
    assert inv("deps.check", cwd=project).returncode == 0


def test_add_changes_nothing_when_the_package_cannot_be_resolved(project):
    saved = {path.name: path.read_text() for path in (project / "requirements").iterdir()}
    result = inv("deps.add", "iso8601==0.0.0.1", "--layer", "production", cwd=project)
    assert result.returncode == 2
    assert "requirements/production.in cannot be compiled" in result.stderr
    assert {path.name: path.read_text() for path in (project / "requirements").iterdir()} == saved


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ("deps.add", "iso8601", "--layer", "prod"),
            "--layer is 'prod'; valid layers: production, testing, development.",
        ),
        (("deps.add", "iso 8601", "--layer", "testing"), "'iso 8601' is not a requirement"),
        (("deps.add", "Flask_SQLAlchemy", "--layer", "testing"), "already in requirements/production.in"),
        (("deps.upgrade", "-p", "no-such-package"), "'no-such-package' is pinned in no requirements/*.txt"),
    ],
)
def test_dependency_mistakes_end_in_one_sentence(project, args, expected):
    saved = {path.name: path.read_text() for path in (project / "requirements").iterdir()}
    result = inv(*args, cwd=project)
    assert result.returncode == 2
    assert expected in one_sentence(result.stderr)
    assert {path.name: path.read_text() for path in (project / "requirements").iterdir()} == saved


def test_changelog_links_come_from_package_metadata():
    # Flask declares "Changes" among its project URLs; the project's own tooling is no installed distribution.
    assert re.match(r"https://\S+", dependencies.changelog_url("flask") or "")
    assert dependencies.changelog_url("no-such-distribution") is None
