"""The audit of the locked requirements (``nox -s audit``): known vulnerabilities fail unless an exception records
why they are accepted, and since when.

pip-audit reads the compiled files as they are (``--disable-pip``: nothing is installed) and asks the package
index's vulnerability data about each pin. Where that data cannot be reached, pip-audit reports every package as
"not audited"; the audit then says so and skips instead of passing. The exceptions live in
``requirements/audit-exceptions.toml``::

    [[exception]]
    id = "GHSA-xxxx-xxxx-xxxx"      # the advisory, as pip-audit names it (or one of its aliases)
    package = "example"
    reason = "We never call the affected function; the fix needs Python 3.12."
    recorded = 2026-12-03           # a TOML date
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from devtools.errors import DependencyError

ROOT = Path(__file__).resolve().parent.parent
EXCEPTIONS = Path("requirements/audit-exceptions.toml")
AUDITED = ("production", "development")  # development holds testing, which holds production
REQUIRED = {"id": str, "package": str, "reason": str, "recorded": datetime.date}


@dataclass
class Findings:
    """What one audit found: vulnerabilities without an exception, those excused, and packages not audited."""

    vulnerable: list[str] = field(default_factory=list)
    excused: list[str] = field(default_factory=list)
    unaudited: list[str] = field(default_factory=list)
    audited: int = 0


def load_exceptions(path: Path) -> dict[str, dict]:
    """Return the recorded exceptions of ``path`` by advisory id, or raise a DependencyError naming the entry
    and the field that is missing or wrong."""
    if not path.exists():
        return {}
    try:
        entries = tomllib.loads(path.read_text()).get("exception", [])
    except tomllib.TOMLDecodeError as exc:
        raise DependencyError(f"{path}: not valid TOML ({exc}).") from None
    if not isinstance(entries, list):
        raise DependencyError(f"{path}: 'exception' must be an array of tables ([[exception]]).")
    exceptions = {}
    for number, entry in enumerate(entries, start=1):
        for key, kind in REQUIRED.items():
            value = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(value, kind) or isinstance(value, datetime.datetime) or value in ("",):
                shape = "a TOML date such as 2026-12-03" if kind is datetime.date else "a non-empty string"
                raise DependencyError(f"{path}: exception {number} needs '{key}', {shape}.")
        exceptions[entry["id"]] = entry
    return exceptions


def assess(report: dict, exceptions: dict[str, dict]) -> Findings:
    """Sort pip-audit's JSON ``report`` into findings, excusing advisories that have a recorded exception."""
    findings = Findings()
    for dependency in report.get("dependencies", []):
        name = dependency["name"]
        if "skip_reason" in dependency:
            findings.unaudited.append(f"{name}: {dependency['skip_reason']}")
            continue
        findings.audited += 1
        for vulnerability in dependency.get("vulns", []):
            ids = [vulnerability["id"], *vulnerability.get("aliases", [])]
            excuse = next((exceptions[i] for i in ids if i in exceptions), None)
            line = f"{name} {dependency.get('version', '')}: {', '.join(ids)}"
            if excuse and excuse["package"].lower() == name.lower():
                findings.excused.append(f"{line} (accepted {excuse['recorded']}: {excuse['reason']})")
            else:
                fixes = ", ".join(vulnerability.get("fix_versions", [])) or "none yet"
                findings.vulnerable.append(f"{line}; fixed in: {fixes}")
    return findings


def run_pip_audit(requirements: Path) -> dict:
    """Run pip-audit on the compiled file ``requirements`` without installing it; return its JSON report."""
    with tempfile.TemporaryDirectory(prefix="audit-") as scratch:
        output = Path(scratch) / "report.json"
        command = [
            sys.executable, "-m", "pip_audit", "--requirement", str(requirements), "--disable-pip",
            "--require-hashes", "--progress-spinner", "off", "--format", "json", "--output", str(output),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if not output.exists():
            raise DependencyError(f"pip-audit failed on {requirements}: {result.stderr.strip()[-2000:]}")
        return json.loads(output.read_text())


def audit(root: Path = ROOT) -> tuple[int, str]:
    """Audit the production and development sets; return an exit code (0 clean, 1 vulnerable, 3 not audited)
    and the report to print."""
    exceptions = load_exceptions(root / EXCEPTIONS)
    lines, code = [], 0
    for layer in AUDITED:
        findings = assess(run_pip_audit(root / "requirements" / f"{layer}.txt"), exceptions)
        if findings.unaudited and not findings.audited:
            reason = findings.unaudited[0].split(": ", 1)[1]
            return 3, f"Skipped: the vulnerability data could not be reached (pip-audit: {reason})."
        lines.append(f"{layer}: {findings.audited} packages audited")
        lines += [f"  accepted: {line}" for line in findings.excused]
        lines += [f"  VULNERABLE: {line}" for line in findings.vulnerable]
        lines += [f"  not audited: {line}" for line in findings.unaudited]
        if findings.vulnerable or findings.unaudited:
            code = 1
    if code:
        lines.append(
            "Upgrade the package (`inv deps.upgrade --package NAME`), or record why it is accepted in requirements/"
            "audit-exceptions.toml (id, package, reason, recorded)."
        )
    return code, "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv:
        print("usage: python -m devtools.audit", file=sys.stderr)
        return 2
    try:
        code, report = audit()
    except DependencyError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(report, file=sys.stderr if code == 1 else sys.stdout)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
