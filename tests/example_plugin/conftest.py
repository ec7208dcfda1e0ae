"""Not part of the example package.

This repo's own test run must not collect the example's tests directly: they need
the package installed. tests/test_contract_example_plugin.py builds and installs
it into a temporary folder and runs them there.
"""

collect_ignore = ["tests"]
