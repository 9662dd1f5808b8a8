"""One check per spec clause that the public Pool API can show (spec/pool.md), a module per section.

Each check gets `make_pool(processes, **options)`, the target's constructor,
and either returns (the clause holds), raises Broken("reason") (it does not)
or Skip("reason") (it does not apply). Every blocking call has a timeout, so
that a check reports FAIL where it can; the runner's deadline catches the rest
as HANG. Each check stops what it starts (`with running(make_pool(2)) as pool:`),
uses only the pools it makes for its own clause, and runs in a process of its own.

The checks use only the public API: what the pool does for its state
(states.py), files for tasks that must wait (gates.py), and /proc for the
worker processes (proc.py). Clauses about the pool's insides (LIFE-2's INIT
rows, WORK-2, WORK-3, WORK-6, WORK-7, SHUT-1, SHUT-2, SHUT-3) have no check of
their own; their consequences are checked by WORK-1, WORK-4, WORK-5, LOST-1,
LOST-3, SHUT-4 and SHUT-6.

Importing this package registers the checks in the spec's order; the BUF, TIME
and CANCEL checks follow in ../control_clauses.py.
"""

# In the spec's order, which the registry and so the report keep.
# isort: off
from . import lifecycle, api, jobs, errors, workers, lost, shutdown  # noqa: F401  (register the checks)

# isort: on
