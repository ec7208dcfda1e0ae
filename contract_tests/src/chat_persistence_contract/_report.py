"""The outcome of a contract run: one result per check, and a readable report."""

from __future__ import annotations

from typing import Literal

import attrs

Outcome = Literal["passed", "failed", "skipped"]


@attrs.frozen
class CheckResult:
    """How one check went. ``reason`` says why it failed or was skipped."""

    name: str
    outcome: Outcome
    reason: str = ""
    duration: float = 0.0
    description: str = ""


@attrs.frozen
class ContractReport:
    """The result of ``run_contract``: every check, passed, failed or skipped.

    ``passed`` is True when no check failed; skipped checks (a capability the
    adapter does not declare) are reported, never counted as passed.
    """

    results: tuple[CheckResult, ...] = attrs.field(converter=tuple)
    target: str = ""
    capabilities: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not self.failed

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """The checks that failed."""
        return tuple(r for r in self.results if r.outcome == "failed")

    @property
    def skipped(self) -> tuple[CheckResult, ...]:
        """The checks that did not run, each with the reason."""
        return tuple(r for r in self.results if r.outcome == "skipped")

    @property
    def failed_names(self) -> frozenset[str]:
        """The names of the checks that failed."""
        return frozenset(r.name for r in self.failed)

    def format(self) -> str:
        """A multi-line text report: a line per check, the reasons, and a summary."""
        lines = [f"chat-persistence contract: {self.target or 'adapter'}"]
        lines.append(f"capabilities: {', '.join(self.capabilities) or '(none)'}")
        width = max((len(r.name) for r in self.results), default=0)
        for result in self.results:
            lines.append(
                f"  {_MARK[result.outcome]} {result.name.ljust(width)}  {result.duration:6.3f}s"
            )
            if result.reason:
                lines.extend(f"      {line}" for line in result.reason.splitlines())
        total = len(self.results)
        passed = total - len(self.failed) - len(self.skipped)
        lines.append(
            f"{passed} passed, {len(self.failed)} failed, {len(self.skipped)} skipped "
            f"of {total} checks: {'PASSED' if self.passed else 'FAILED'}"
        )
        return "\n".join(lines)


_MARK: dict[Outcome, str] = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}
