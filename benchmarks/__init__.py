"""Benchmarks: scripts run as ``python benchmarks/NAME.py``, clients of the library like a
user's script. A package only so that import-linter reads their imports (pyproject.toml)."""
