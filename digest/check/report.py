"""Findings and the report of one check: what the CLI prints and what CI reads as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]  # the same as digest.mjmlschema.Severity


@dataclass(frozen=True)
class Finding:
    """One problem: severity, rule id, what is wrong, where to fix it, how."""

    severity: Severity
    rule: str
    message: str
    where: str
    fix: str


@dataclass(frozen=True)
class Report:
    """All findings for one built digest."""

    folder: Path
    window: str
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        """How many findings are errors."""
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        """How many findings are warnings."""
        return sum(f.severity == "warning" for f in self.findings)

    def failed(self, *, strict: bool) -> bool:
        """Errors fail the check; with strict, warnings do too."""
        return self.errors > 0 or (strict and self.warnings > 0)

    def as_json(self, *, strict: bool) -> str:
        """The report for CI: counts, pass/fail and every finding."""
        data = {
            "folder": str(self.folder),
            "window": self.window,
            "strict": strict,
            "passed": not self.failed(strict=strict),
            "errors": self.errors,
            "warnings": self.warnings,
            "findings": [asdict(f) for f in self.findings],
        }
        return json.dumps(data, indent=2, ensure_ascii=False)


def format_report(report: Report) -> str:
    """The findings for people: one block per finding."""
    lines: list[str] = []
    for f in report.findings:
        lines.append(f"{f.severity}: {f.message} [{f.rule}]")
        lines.append(f"    where: {f.where}")
        lines.append(f"    fix:   {f.fix}")
    return "\n".join(lines)
