"""Pure plan builders: records (and observed kernel facts) in, a `Plan` out. No I/O, no database:
testable without root (tests/unit/test_builders.py, test_parse.py, test_dry_run.py)."""
