"""The audit of the locked requirements: what fails, what a recorded exception excuses, and the skip when the
vulnerability data cannot be reached."""

import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("pip_audit", reason="the audit runs pip-audit (requirements/development.txt)")

from devtools import audit
from devtools.errors import DependencyError

ROOT = Path(__file__).resolve().parent.parent
ADVISORY = {"id": "GHSA-aaaa-bbbb-cccc", "aliases": ["CVE-2026-0001"], "fix_versions": ["2.0"], "description": "x"}
EXCEPTION = """
[[exception]]
id = "CVE-2026-0001"
package = "Example"
reason = "The affected parser is never called."
recorded = 2026-12-01
"""


def report(*dependencies):
    return {"dependencies": list(dependencies), "fixes": []}


def test_an_advisory_without_an_exception_is_a_finding():
    findings = audit.assess(report({"name": "example", "version": "1.0", "vulns": [ADVISORY]}), {})
    assert findings.vulnerable == ["example 1.0: GHSA-aaaa-bbbb-cccc, CVE-2026-0001; fixed in: 2.0"]
    assert findings.audited == 1


def test_a_recorded_exception_excuses_its_advisory_by_any_alias_for_its_package_only(tmp_path):
    path = tmp_path / "exceptions.toml"
    path.write_text(EXCEPTION)
    exceptions = audit.load_exceptions(path)
    excused = audit.assess(report({"name": "example", "version": "1.0", "vulns": [ADVISORY]}), exceptions)
    assert excused.vulnerable == [] and "accepted 2026-12-01: The affected parser" in excused.excused[0]
    other = audit.assess(report({"name": "other", "version": "1.0", "vulns": [ADVISORY]}), exceptions)
    assert len(other.vulnerable) == 1 and other.excused == []


@pytest.mark.parametrize(
    "text, message",
    [
        (EXCEPTION.replace("recorded = 2026-12-01", 'recorded = "last week"'), "needs 'recorded', a TOML date"),
        (EXCEPTION.replace('reason = "The affected parser is never called."', ""), "exception 1 needs 'reason'"),
        (EXCEPTION.replace('reason = "The affected parser is never called."', 'reason = ""'), "needs 'reason'"),
        ("[[exception]\n", "not valid TOML"),
    ],
)
def test_an_exception_without_its_reason_or_date_is_refused(tmp_path, text, message):
    path = tmp_path / "exceptions.toml"
    path.write_text(text)
    with pytest.raises(DependencyError, match=re.escape(message)):
        audit.load_exceptions(path)


def test_the_projects_exception_file_is_valid():
    assert isinstance(audit.load_exceptions(ROOT / audit.EXCEPTIONS), dict)


def project_copy(tmp_path):
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    return tmp_path


def test_audit_skips_when_no_package_could_be_audited(tmp_path, monkeypatch):
    unreachable = {"name": "flask", "skip_reason": "Dependency not found on PyPI and could not be audited: flask"}
    monkeypatch.setattr(audit, "run_pip_audit", lambda path: report(unreachable))
    code, text = audit.audit(project_copy(tmp_path))
    assert code == 3
    assert text.startswith("Skipped: the vulnerability data could not be reached (pip-audit: Dependency not found")


def test_audit_fails_on_a_vulnerability_or_a_package_left_unaudited(tmp_path, monkeypatch):
    vulnerable = {"name": "example", "version": "1.0", "vulns": [ADVISORY]}
    clean = {"name": "flask", "version": "3.1.3", "vulns": []}
    unaudited = {"name": "private", "skip_reason": "Dependency not found on PyPI"}
    monkeypatch.setattr(audit, "run_pip_audit", lambda path: report(vulnerable, clean))
    code, text = audit.audit(project_copy(tmp_path))
    assert code == 1 and "VULNERABLE: example 1.0: GHSA-aaaa-bbbb-cccc" in text
    monkeypatch.setattr(audit, "run_pip_audit", lambda path: report(clean, unaudited))
    code, text = audit.audit(project_copy(tmp_path / "second"))
    assert code == 1 and "not audited: private" in text
    (tmp_path / "second/requirements/audit-exceptions.toml").write_text(EXCEPTION)
    monkeypatch.setattr(audit, "run_pip_audit", lambda path: report(vulnerable, clean))
    assert audit.audit(tmp_path / "second")[0] == 0


def test_pip_audit_reads_a_hashed_requirements_file(tmp_path):
    # One package from the locked files, hashes included: pip-audit accepts the flags and reports on it, audited
    # or (where the vulnerability data cannot be reached, as on machines without the index's JSON API) skipped.
    text = (ROOT / "requirements/production.txt").read_text()
    entry = re.search(r"^blinker==\S+ \\\n(?:    --hash=\S+(?: \\)?\n)+", text, re.M).group(0)
    (tmp_path / "one.txt").write_text(entry)
    result = audit.run_pip_audit(tmp_path / "one.txt")
    [dependency] = result["dependencies"]
    assert dependency["name"] == "blinker"
    assert "skip_reason" in dependency or dependency["version"] == re.search(r"==(\S+)", entry).group(1)
