"""Fixtures shared by this repo's tests live in tests/fix_*.py, loaded here."""

pytest_plugins: list[str] = ["fix_pg", "fix_faults", "fix_hosts", "fix_host_matrix"]
