"""Executable models of refpool, checked against spec/pool.md (see each module's docstring)."""
