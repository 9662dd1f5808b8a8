"""Writes spec/conformance.md: `refpool conform` run on refpool and its peers.

Run it with a Python that has the peers installed (`--reuse` renders again from the
results of the last run, kept in the temporary folder) (pip install billiard
multiprocess ray); a peer that is not installed is listed as such. Ray's
pool is run on a local Ray cluster that the script starts for it and stops
after (refpool.conform.peers.local_ray_cluster). Each
clause a peer does not pass is explained in a sentence from EXPLAINED; the
script names any that has none, so the document never shows an unexplained
divergence.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile

from refpool.conform.peers import CLUSTER_CPUS, ClusterUnavailable, local_ray_cluster
from refpool.conform.report import Report, as_markdown
from refpool.conform.runner import Verdict

TARGETS = ["refpool", "refpool-threads", "stdlib", "stdlib-threads", "billiard", "multiprocess", "ray"]
OUT = pathlib.Path(__file__).with_name("conformance.md")

# Why a clause is not passed: by (target, clause), else by ("*", clause) for what the
# CPython-derived pools share. A refpool extension is marked as such in the tables.
EXPLAINED: dict[tuple[str, str], str] = {
    ("*", "API-5"): "imap's task handler reads the whole input into its queue at once (refpool reads "
    "it as workers take tasks).",
    ("*", "API-11"): "map accepts chunksize 0 or -1 and returns Nones, and a float chunksize is accepted "
    "and fails later or never settles (refpool refuses both at once).",
    ("*", "API-12"): "a non-int processes fails inside a comparison with a message that does not name it, "
    "and processes=None counts every CPU of the machine, not those the process may use "
    "(os.process_cpu_count arrived in Python 3.13).",
    ("*", "JOB-7"): "a callback that is not callable is accepted at submission; the result handler "
    "fails when it calls it.",
    ("*", "JOB-5"): "a callback that raises kills the result handler thread, so that job's get() and "
    "every later one wait forever (gh-83371).",
    ("*", "ERR-2"): "an exception that cannot be unpickled kills the result handler, and get() waits "
    "forever (gh-79492).",
    ("*", "LOST-1"): "no one knows which task a dead worker had taken from the shared queue, so its job "
    "never settles (bpo-22393).",
    ("*", "LOST-4"): "a worker whose initializer raises is replaced at once, forever, and the jobs "
    "wait for a worker that never starts them (refpool fails them with the initializer's exception "
    "from the third failure in a row).",
    ("stdlib-threads", "LOST-4"): "a worker thread whose initializer raised is never replaced (a dead "
    "thread has no exit code for the worker handler to see), so once both workers have failed, the "
    "jobs wait forever, though the third attempt would succeed.",
    ("*", "SHUT-7"): "a joined pool keeps its pipes open until the pool object itself is freed "
    "(refpool closes them in join()).",
    ("billiard", "SHUT-8"): "after map returns, the pool still holds some of the inputs of its last "
    "tasks.",
    ("*", "LOST-3"): "as for LOST-1: the killed worker's job never settles, so the check cannot see "
    "whether the tasks queued behind it ran (bpo-22393).",
    ("*", "SHUT-5"): "terminate() leaves unfinished jobs unsettled: their get() without a timeout waits forever.",
    ("stdlib-threads", "LIFE-6"): "a submit that passes the state check just as close() runs can be "
    "queued behind the workers' shutdown sentinel and never run (seen in this run; intermittent).",
    ("stdlib", "LIFE-6"): "a submit racing close() was queued and never run in this run (intermittent).",
    # The clauses of bounded imap, task timeouts and cancelling: the CPython-derived pools have none
    # of the three (CPython's pool gets imap(buffersize=...) in 3.16, gh-64192).
    ("*", "BUF-1"): "imap and imap_unordered take no buffersize (CPython's pool gets it in 3.16, gh-64192), so the input cannot be bounded by what the caller has taken.",
    ("*", "BUF-2"): "imap takes no buffersize (see BUF-1).",
    ("*", "BUF-3"): "imap takes no buffersize (see BUF-1).",
    ("*", "BUF-4"): "imap takes no buffersize (see BUF-1).",
    ("*", "BUF-5"): "imap takes no buffersize (see BUF-1).",
    ("*", "BUF-6"): "imap takes no buffersize (see BUF-1).",
    ("*", "TIME-1"): "apply_async, map_async, starmap_async and the imaps take no timeout=: a task cannot be given a limit on its running time.",
    ("*", "TIME-2"): "apply_async takes no timeout= (see TIME-1).",
    ("*", "TIME-3"): "apply_async takes no timeout= (see TIME-1).",
    ("*", "TIME-4"): "apply_async takes no timeout=, so a ThreadPool refuses one with TypeError (unexpected keyword), not the ValueError that says why it cannot keep it.",
    ("*", "CANCEL-1"): "the results of apply_async and map_async, and the imap iterators, have no cancel(): a job, once submitted, runs.",
    ("*", "CANCEL-2"): "no cancel() (see CANCEL-1).",
    ("*", "CANCEL-3"): "no cancel() (see CANCEL-1).",
    ("billiard", "TIME-1"): "apply_async takes a timeout=, but map_async, starmap_async and the imaps do not.",
    ("billiard", "TIME-2"): "apply_async takes a timeout=, but billiard enforces it only in a pool made with enable_timeouts=True (or a pool-wide timeout), so the task ran on; with timeouts enabled it fails with billiard's own exception wrapper, not a TimeoutError.",
    ("billiard", "TIME-3"): "as for TIME-2: the task held past its timeout ran on, and never failed.",
    # billiard 4 (Celery's fork of the pool) changed much of the API on purpose.
    ("billiard", "LIFE-1"): "repr(pool) shows no state (billiard keeps the default object repr).",
    ("billiard", "LIFE-2"): "repr(pool) shows no state, so the transitions cannot be observed.",
    ("billiard", "LIFE-3"): "join() in RUN fails an assert (AssertionError), not ValueError('Pool is still running').",
    ("billiard", "LIFE-4"): "repr(pool) shows no state, so the no-op close cannot be observed.",
    ("billiard", "LIFE-5"): "repr(pool) shows no state after the with block.",
    ("billiard", "LIFE-6"): "apply_async returned None for some submits racing close(), where a result object is due.",
    ("billiard", "LIFE-7"): "a running pool that is garbage-collected emits no ResourceWarning.",
    ("billiard", "API-6"): "imap over an input that raises stops quietly, without raising the input's exception.",
    ("billiard", "API-7"): "processes=0 is accepted, and -1 is refused with 'at least 0'.",
    ("billiard", "API-9"): "repr(pool) is the default object repr.",
    ("billiard", "JOB-2"): "get(timeout) on a running job does not behave as the stdlib's (see the check's step).",
    ("billiard", "JOB-4"): "error_callback receives an ExceptionInfo wrapper, not the exception that get() raises.",
    ("billiard", "ERR-1"): "the MaybeEncodingError it raises is billiard's own class, not multiprocessing's.",
    ("billiard", "ERR-3"): "a task that cannot be pickled leaves its job unsettled.",
    ("billiard", "LOST-1"): "billiard reports a lost worker with WorkerLostError only after its "
    "lost_worker_timeout (10 s by default), longer than the check waits.",
    ("billiard", "LOST-2"): "repr(pool) shows no state after a lost worker.",
    ("billiard", "SHUT-6"): "two file descriptors stay open after close(), join() and dropping the pool.",
    # multiprocess (dill-based fork of the stdlib pool).
    ("multiprocess", "API-4"): "next(timeout) raised the builtin TimeoutError (multiprocess's own "
    "TimeoutError is not multiprocessing's), which the check does not accept.",
    ("multiprocess", "JOB-2"): "get(timeout) raises multiprocess.TimeoutError, which is not multiprocessing.TimeoutError.",
    ("multiprocess", "JOB-5"): "the job whose callback raised never settles (gh-83371, as the stdlib), seen as a timeout.",
    ("multiprocess", "ERR-1"): "dill pickles what pickle cannot, so the 'unpicklable' result travels back.",
    ("multiprocess", "ERR-2"): "the undecodable result leaves get() waiting, as in the stdlib (gh-79492).",
    ("multiprocess", "ERR-3"): "dill pickles a local function, so the task runs instead of failing.",
    ("multiprocess", "LOST-1"): "a job whose worker died never settles, as in the stdlib (bpo-22393).",
    ("multiprocess", "SHUT-5"): "terminate() leaves unfinished jobs unsettled, as the stdlib's does.",
    # Ray's pool (ray.util.multiprocessing) is not derived from CPython's: its workers are actors
    # of a Ray cluster (see the note above its table), and each sentence below was seen on one.
    ("ray", "LIFE-1"): "terminate() asks the cluster to kill the workers and returns at once, and join() does not wait for them, so a task running at terminate() can still complete after join() has returned (intermittent).",
    ("ray", "LIFE-3"): "as for LIFE-1: the task held at terminate() completed after join() had returned (intermittent).",
    ("ray", "LIFE-5"): "as for LIFE-1: leaving the block calls terminate(), and the task held then completed after join() had returned (intermittent).",
    ("ray", "LIFE-6"): "close() asks each worker actor to exit before it marks the pool closed, so a submit that passed the running check meanwhile is queued behind that exit: it fails with ActorDiedError, or never runs.",
    ("ray", "LIFE-7"): "a running pool that is garbage-collected emits no ResourceWarning.",
    ("ray", "API-3"): "map deals its chunks to the workers in turn, all at once, so every chunk dealt to the worker running a long item waits behind it while the other worker is idle.",
    ("ray", "API-6"): "imap over an input that raises never yields the exception: next() times out.",
    ("ray", "API-7"): "processes below 1 is refused with Ray's own message ('Processes in the pool must be >0.'), a non-callable initializer kills the workers as they start (ActorDiedError), and a bad maxtasksperchild is accepted.",
    ("ray", "API-9"): "repr(pool) is the default object repr.",
    ("ray", "API-10"): "context= is accepted and ignored (Ray logs a warning): the workers are started by the cluster, never forked from the caller.",
    ("ray", "API-11"): "map_async with a chunksize of 1.5, 0 or -1 fails an internal assert (AssertionError), and imap with 1.5 fails inside itertools.islice (ValueError), not with an error that names the chunksize.",
    ("ray", "API-12"): "a processes of '2' or 2.5 fails inside Ray with a TypeError that does not name it, and processes=None takes every CPU of the cluster (4 here), not those the caller may use.",
    ("ray", "JOB-1"): "starmap_async has no chunksize parameter: its third is callback, so a call with a chunksize and callback= fails with TypeError.",
    ("ray", "JOB-3"): "an exception from a task comes back without the worker's traceback as __cause__.",
    ("ray", "JOB-4"): "error_callback receives a PoolTaskError wrapper, not the exception get() raises.",
    ("ray", "JOB-5"): "a callback that raises does not fail its job: get() returns the value.",
    ("ray", "JOB-7"): "apply_async accepts callback=5 at submission.",
    ("ray", "ERR-1"): "a result that cannot be pickled fails its task with Ray's RayTaskError(TypeError), not MaybeEncodingError.",
    ("ray", "ERR-2"): "a result that cannot be unpickled fails its job with Ray's RaySystemError, which does not say that the result could not be decoded.",
    ("ray", "ERR-3"): "tasks are pickled with cloudpickle, which sends a local function by value, so the task runs instead of failing.",
    ("ray", "WORK-4"): "with maxtasksperchild=1 Ray starts a new worker actor for every task, so the map of 6 tasks took 4 to 6 s alone and over the check's 10 s under load, and once in 3 runs failed with ActorDiedError.",
    ("ray", "WORK-5"): "Ray deals tasks to its workers in turn, busy or not, so a quick task waited behind a running one while another worker was idle.",
    ("ray", "LOST-1"): "a worker that dies is never replaced: its task fails with ActorDiedError, and every later task dealt to its actor fails at once without running.",
    ("ray", "LOST-2"): "a worker that dies is never replaced, and the next job, dealt in turn to the worker holding a long task, waited behind it.",
    ("ray", "LOST-3"): "the tasks queued on a worker actor fail with it when it dies (ActorDiedError), though they never started.",
    ("ray", "LOST-4"): "a worker whose initializer raises dies and is never replaced, so the tasks dealt to it fail with ActorDiedError (carrying the initializer's exception), though a later attempt would succeed.",
    ("ray", "SHUT-4"): "join() after close() waits for the worker actors to exit, but each job is settled by a result thread of its own, so a job can still be unsettled just after join() returns (intermittent).",
    ("ray", "SHUT-6"): "with another check running beside it, a socket that Ray's driver opened while the pool ran was still open after terminate() and join() (intermittent; alone, the check passed 2 runs of 2).",
    ("ray", "SHUT-7"): "a worker killed while idle is never replaced, so the next map_async fails with ActorDiedError (and under load, as for SHUT-6, a socket was still open after terminate() and join()).",
}
# Ray's pool has none of refpool's three extensions either, and fails their checks with the
# same reasons ("imap() does not accept buffersize=", ...): the shared sentences hold for it.
EXPLAINED.update(
    {
        ("ray", clause): sentence
        for (who, clause), sentence in list(EXPLAINED.items())
        if who == "*" and clause.startswith(("BUF-", "TIME-", "CANCEL-"))
    }
)
# The pools whose divergences are explained one by one: the "*" sentences, about what the
# CPython-derived pools share, are not theirs.
OWN_EXPLANATIONS = {"ray"}


CACHE = pathlib.Path(tempfile.gettempdir()) / "refpool-conformance"


def conform(target: str, reuse: bool) -> tuple[Report | None, str]:
    cached = CACHE / f"{target}.json"
    if reuse and cached.exists():
        data = json.loads(cached.read_text())
    else:
        try:
            with runs_on(target) as environment:
                done = subprocess.run(
                    [sys.executable, "-m", "refpool", "conform", target, "--format", "json", "--report-only"],
                    capture_output=True,
                    text=True,
                    timeout=1800,
                    check=False,
                    env={**os.environ, **environment},
                )
        except ClusterUnavailable as error:
            return None, str(error)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            return None, lines[-1] if lines else f"exit code {done.returncode}"
        CACHE.mkdir(exist_ok=True)
        cached.write_text(done.stdout)
        data = json.loads(done.stdout)
    verdicts = [Verdict(**v) for v in data["verdicts"]]
    return Report(data["target"], data["version"], verdicts, data["fuzz"], data["python"]), ""


def runs_on(target: str) -> contextlib.AbstractContextManager[dict[str, str]]:
    """What the target's pools run on, for the length of its run, as environment variables:
    for Ray's pool a local Ray cluster, started here and stopped afterwards, also on failure."""
    if target == "ray":
        return local_ray_cluster(CLUSTER_CPUS)
    return contextlib.nullcontext({})


# Said above a target's table, where the run itself needs a word.
NOTES: dict[str, str] = {
    "ray": f"Ray's pool runs on a Ray cluster. This table was made on a local cluster of {CLUSTER_CPUS} CPUs "
    "(`ray start --head`), started by this script and joined by every check's process through RAY_ADDRESS, "
    "so that each pool the checks make (up to 3 workers) is accepted; without a cluster, Ray's Pool(n) "
    "starts a private one of n CPUs and refuses any larger pool in that process. Ray's workers are actors "
    "that the cluster starts, not children of the caller, and Ray deals tasks to them in turn, busy or not: "
    "several verdicts below follow from these two facts.",
}


def main() -> int:
    reuse = "--reuse" in sys.argv[1:]  # render again from the last run's results
    sections = [
        "# Conformance of refpool and its peers",
        "",
        "Generated by `python spec/make_conformance.py`, which runs `refpool conform TARGET` on each pool.",
        "A clause marked (refpool) is one where refpool's spec chose behaviour different from CPython's on",
        "purpose (a hang or lost work there); failing it means \"differs from CPython's choice\", not",
        "\"breaks the Pool API\". Every other clause not passed is explained below its table.",
        "",
    ]
    unexplained: list[str] = []
    for target in TARGETS:
        print(f"conform {target} ...", file=sys.stderr, flush=True)
        report, problem = conform(target, reuse)
        if report is None:
            sections += [f"### {target}", "", f"Not run here: {problem}", ""]
            continue
        if target in NOTES:
            sections += [f"Note on {target}: {NOTES[target]}", ""]
        sections.append(as_markdown(report))
        notes = []
        for verdict in report.verdicts:
            if verdict.status in ("PASS", "SKIP"):
                continue
            sentence = EXPLAINED.get((target, verdict.clause))
            if sentence is None and target not in OWN_EXPLANATIONS:
                sentence = EXPLAINED.get(("*", verdict.clause))
            if sentence is None:
                unexplained.append(f"{target} {verdict.clause} {verdict.status}: {verdict.reason}")
                sentence = "(not yet explained)"
            notes.append(f"- {verdict.clause} ({verdict.status}): {sentence}")
        if notes:
            sections += ["Why:", "", *notes, ""]
    OUT.write_text("\n".join(sections))
    for line in unexplained:
        print(f"unexplained: {line}", file=sys.stderr)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
