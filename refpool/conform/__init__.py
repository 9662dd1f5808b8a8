"""The conformance oracle: checks any pool with the multiprocessing.pool API against spec/pool.md.

`refpool conform TARGET` runs one check per spec clause that the public API can
show, each in a fresh subprocess with a deadline, so that a pool which hangs,
crashes or leaks cannot take the oracle with it; then a differential fuzzer
drives the target and the executable model with the same calls. The report is
a table of clauses with PASS, FAIL, HANG, CRASH or SKIP, and for a divergence
a short script that reproduces it.

- registry.py: what a check is, and the list of them (filled by the clauses package and, for
  BUF, TIME and CANCEL, control_clauses.py);
- targets.py: TARGET strings and the pools they name;
- child.py: runs one check in the subprocess; runner.py: runs them all;
- fuzz.py: the differential fuzzer; report.py: text, markdown, JSON.
"""
