"""The benchmark suite of issue 5: refpool against multiprocessing.pool, and the peers.

Run it with `python -m benchmarks` (see README.md here). The parts:

- work.py: the functions sent to the workers, and case 6's slow consumer;
- targets.py: one adapter per pool library, behind one narrow interface;
- cases.py: the eleven cases, each written once against that interface;
- harness.py: alternating repetitions, medians, ratios, the bars, and the statuses of a
  pool that hangs or fails too many jobs;
- rss_probe.py: case 6 in a fresh process, which reports its own peak RSS;
- report.py: the table, the machine, and the generated section of README.md;
- cli.py: the command line.
"""
