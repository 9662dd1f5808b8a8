"""`refpool trace`: each scenario's trace shows what it must, and each format draws all of it."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

import pytest
from trace_checks import PROBLEMS, html_problems, mermaid_problems, text_problems

from models.trace_invariants import check_final, check_trace
from refpool import cli
from refpool.lifecycle import PoolState
from refpool.observer import (
    OutcomeDelivered,
    SentinelSent,
    ShutdownBegun,
    StateChanged,
    TaskHandedOut,
    TaskTakenBack,
    TaskTimedOut,
    WorkerReaped,
    WorkerStarted,
)
from refpool.trace import html, lanes, mermaid, record, text
from refpool.trace.command import RENDERERS
from refpool.trace.record import Trace, TraceEvent
from refpool.trace.scenarios import SCENARIOS, TIMEOUT, run_scenario
from refpool.transport import TASKS_IN_FLIGHT

Seen = TypeVar("Seen")
ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def traced(scenario: str, workers: int = 2) -> Trace:
    """Each scenario runs once per worker count, for all the tests that read its trace."""
    return run_scenario(scenario, workers)


def observed(trace: Trace, kind: type[Seen]) -> list[tuple[int, Seen]]:
    """(index in the trace, observation) of each observation of this kind."""
    return [(i, e.observation) for i, e in enumerate(trace.events) if isinstance(e.observation, kind)]


def step_index(trace: Trace, text_start: str) -> int:
    return next(
        i for i, e in enumerate(trace.events) if e.observation is None and e.summary.startswith(text_start)
    )


# --- what each scenario must show ---------------------------------------------------------


def sentinel_problems(trace: Trace) -> list[str]:
    """After close(): shutdown begins, then each worker alive gets exactly one sentinel, after
    its last outcome, and exits with 0."""
    problems = []
    begun = observed(trace, ShutdownBegun)
    closed = [i for i, o in observed(trace, StateChanged) if o.after is PoolState.CLOSE]
    if len(begun) != 1 or len(closed) != 1 or begun[0][0] < closed[0]:
        return [f"shutdown begun {begun} not once after close() {closed}"]
    live = begun[0][1].live
    sentinels = observed(trace, SentinelSent)
    if sorted(o.worker_id for _, o in sentinels) != sorted(live):
        problems.append(f"sentinels to {[o for _, o in sentinels]}, workers alive {live}")
    for i, sentinel in sentinels:
        if i < begun[0][0]:
            problems.append(f"{sentinel} before shutdown began")
        outcomes = [j for j, o in observed(trace, OutcomeDelivered) if o.worker_id == sentinel.worker_id]
        if outcomes and outcomes[-1] > i:
            problems.append(f"{sentinel} before the worker's last outcome")
    exits = {o.worker_id: o.exitcode for _, o in observed(trace, WorkerReaped) if o.worker_id in live}
    if exits != dict.fromkeys(live, 0):
        problems.append(f"exit codes {exits} of workers {live}")
    return problems


def crash_problems(trace: Trace, workers: int) -> list[str]:
    """Worker 1 dies holding the crash and one task behind it: the crash is lost, the one behind is
    handed out again and run by the replacement, which starts after the reap."""
    crash_job = int(trace.events[step_index(trace, "apply_async(die_when_released)")].summary.split()[-1])
    behind_job = int(trace.events[step_index(trace, "apply_async(square,")].summary.split()[-1])
    reaps = [(i, o) for i, o in observed(trace, WorkerReaped) if o.worker_id == 1]
    if len(reaps) != 1:
        return [f"worker 1 reaped {len(reaps)} times"]
    at, reaped = reaps[0]
    problems = []
    if (reaped.lost, reaped.requeued, reaped.exitcode) != (((crash_job, 0),), ((behind_job, 0),), 7):
        problems.append(f"{reaped}: expected lost ({crash_job}, 0), requeued ({behind_job}, 0), exit code 7")
    replacement = workers + 1
    if not any(i > at and o.worker_id == replacement for i, o in observed(trace, WorkerStarted)):
        problems.append(f"no worker {replacement} started after the reap")
    ran = [o.worker_id for _, o in observed(trace, OutcomeDelivered) if o.job_id == behind_job]
    if ran != [replacement]:
        problems.append(f"the task behind the crash ran on {ran}, not on worker {replacement}")
    if "WorkerLostError" not in trace.events[step_index(trace, "get() raised")].summary:
        problems.append("the caller did not see WorkerLostError")
    return problems


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_crash_fails_the_lost_task_and_hands_out_the_one_behind_it(workers: int) -> None:
    trace = traced("crash", workers)
    assert crash_problems(trace, workers) == []
    assert sentinel_problems(trace) == []
    assert f"worker {workers + 1}" in trace.lanes


def test_crash_check_catches_a_reap_that_requeues_nothing() -> None:
    trace = traced("crash")
    events = []
    for event in trace.events:
        seen = event.observation
        if isinstance(seen, WorkerReaped) and seen.worker_id == 1:
            seen = seen._replace(requeued=())  # seeded: the task behind the crash is forgotten
            event = TraceEvent(event.at_ns, event.thread, event.lane, None, lanes.describe(seen), seen)
        events.append(event)
    assert any("requeued" in p for p in crash_problems(Trace("crash", 2, tuple(events)), 2))


def test_close_sends_one_sentinel_per_worker_once_each_is_idle() -> None:
    trace = traced("close")
    assert sentinel_problems(trace) == []
    # The tasks were still running when shutdown began: no sentinel went out until an outcome.
    begun = observed(trace, ShutdownBegun)[0][0]
    assert not [o for i, o in observed(trace, OutcomeDelivered) if i < begun]
    assert trace.events[-1].summary == "get() returned [0, 1]"


def test_sentinel_check_catches_a_second_sentinel() -> None:
    trace = traced("close")
    sentinel = next(e for e in trace.events if isinstance(e.observation, SentinelSent))
    seeded = Trace("close", 2, (*trace.events, sentinel))
    assert any("sentinels to" in p for p in sentinel_problems(seeded))


def test_map_delivers_every_position_then_shuts_down() -> None:
    trace = traced("map")
    delivered = {(o.job_id, o.position) for _, o in observed(trace, OutcomeDelivered) if o.success}
    assert {position for _, position in delivered} == set(range(8))
    assert trace.events[step_index(trace, "returned")].summary == f"returned {[x * x for x in range(8)]}"
    assert sentinel_problems(trace) == []


def test_terminate_stops_the_work_in_flight() -> None:
    trace = traced("terminate")
    changes = [o for _, o in observed(trace, StateChanged)]
    assert (changes[-1].before, changes[-1].after) == (PoolState.RUN, PoolState.TERMINATE)
    assert len(observed(trace, TaskHandedOut)) == 4
    assert not observed(trace, OutcomeDelivered)
    assert not observed(trace, SentinelSent)
    assert "PoolTerminatedError" in trace.events[step_index(trace, "get() raised")].summary


def test_timeout_stops_the_worker_from_the_timekeeper() -> None:
    trace = traced("timeout")
    [(at, timed_out)] = observed(trace, TaskTimedOut)
    assert (trace.events[at].lane, trace.events[at].target) == ("timekeeper", "worker 1")
    assert timed_out.timeout == TIMEOUT
    key = (timed_out.job_id, timed_out.position)
    [reaped] = [o for i, o in observed(trace, WorkerReaped) if i > at and o.worker_id == 1]
    assert reaped.lost == (key,) and reaped.exitcode == -9
    assert "TaskTimeoutError" in trace.events[step_index(trace, "get() raised")].summary
    assert any(i > at and o.worker_id == 3 for i, o in observed(trace, WorkerStarted))
    assert trace.lanes[-1] == "timekeeper"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_trace_is_one_the_spec_allows(scenario: str) -> None:
    trace = traced(scenario)
    book = check_trace([e.observation for e in trace.events if e.observation], 2, None, TASKS_IN_FLIGHT)
    assert book.violations == []
    if scenario != "terminate":  # terminate() leaves its workers unreaped (SHUT-5)
        assert check_final(book) == []


# --- which lane each event is drawn on ------------------------------------------------------


def placement_problems(trace: Trace) -> list[str]:
    """An event is drawn from the lane of the thread that reported it (lanes.py), but for a
    worker's start (the worker handler's, even from Pool()) and a worker's message (the worker's)."""
    problems = []
    for event in trace.events:
        reporter = lanes.THREAD_LANES.get(event.thread, "caller")
        seen = event.observation
        if isinstance(seen, WorkerStarted):
            expected: tuple[str, str | None] = ("worker handler", f"worker {seen.worker_id}")
        elif isinstance(seen, OutcomeDelivered | TaskTakenBack):
            expected = (f"worker {seen.worker_id}", reporter)
        elif isinstance(seen, TaskHandedOut | SentinelSent | TaskTimedOut):
            expected = (reporter, f"worker {seen.worker_id}")
        else:
            expected = (reporter, None)
        if (event.lane, event.target) != expected:
            problems.append(f"{event.summary}: drawn {event.route}, expected {expected}")
    return problems


@pytest.mark.parametrize("scenario", ["crash", "timeout"])
def test_each_event_is_drawn_where_its_thread_put_it(scenario: str) -> None:
    trace = traced(scenario)
    assert placement_problems(trace) == []
    threads = {event.thread for event in trace.events}
    assert {"refpool-task-handler", "refpool-result-handler", "refpool-worker-handler"} <= threads
    assert trace.lanes[:2] == ("caller", "task handler")
    assert trace.lanes[-3 if scenario == "timeout" else -2 :][:2] == ("result handler", "worker handler")


def test_placement_check_catches_events_drawn_on_the_wrong_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record, "place", lambda observation, reporter: (reporter, None))  # seeded
    assert placement_problems(run_scenario("map", 1)) != []


# --- every format draws every lane and every event --------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("form", ["text", "mermaid", "html"])
def test_each_format_draws_every_lane_and_event(form: str, scenario: str) -> None:
    trace = traced(scenario)
    assert PROBLEMS[form](RENDERERS[form](trace), trace) == []


SEEDED_DROPS = [
    ("text", text, "event_line", text_problems),
    ("mermaid", mermaid, "event_line", mermaid_problems),
    ("html", html, "event_mark", html_problems),
]


@pytest.mark.parametrize(
    ("form", "module", "name", "problems"), SEEDED_DROPS, ids=[s[0] for s in SEEDED_DROPS]
)
def test_the_checks_catch_a_renderer_that_drops_a_lanes_events(
    form: str, module: object, name: str, problems: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    draw = getattr(module, name)

    def drops_result_handler(*args: object) -> str:
        event = next(arg for arg in args if isinstance(arg, TraceEvent))
        return "" if "result handler" in event.lanes else str(draw(*args))

    monkeypatch.setattr(module, name, drops_result_handler)  # seeded
    trace = traced("crash")
    found = problems(RENDERERS[form](trace), trace)
    assert any("events" in problem or "event lines" in problem for problem in found), found


def test_whatever_the_trace_holds_is_escaped() -> None:
    nasty = 'get() raised ValueError: <script>alert("x")</script> & a;b #35; -->'
    trace = Trace("crash", 2, (TraceEvent(1000, "MainThread", "caller", None, nasty, None),))
    page = html.render(trace)
    assert "<script>alert" not in page and html_problems(page, trace) == []
    assert mermaid_problems(mermaid.render(trace), trace) == []
    assert "a#59;b #35;35#59;" in mermaid.render(trace)


# --- the command --------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["text", "mermaid", "html"])
def test_the_command_writes_each_format(form: str, tmp_path: Path) -> None:
    out = tmp_path / f"trace.{form}"
    done = subprocess.run(
        [sys.executable, "-m", "refpool", "trace", "--format", form, "--output", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    written = out.read_text(encoding="utf-8")
    # The run is not this process's: check the output against its own header and the known lanes.
    fixed = ("caller", "task handler", "worker 1", "worker 2", "result handler", "worker handler")
    if form == "text":
        count = int(written.splitlines()[0].rsplit(" ", 2)[-2])
        assert written.splitlines()[1] == f"lanes: {', '.join(fixed)}"
        assert sum(1 for line in written.splitlines() if " ms  " in line) == count > 20
    elif form == "mermaid":
        assert written.startswith("sequenceDiagram\n")
        assert [line.split(" as ")[1] for line in written.splitlines() if " participant " in line] == list(
            fixed
        )
        assert "Note over caller: " in written and "task_handler->>worker_1: " in written
    else:
        assert written.startswith("<!DOCTYPE html>")
        assert written.count('<g class="lane"') == len(fixed)
        assert written.count('<g class="event"') == written.count('class="mark"') > 20


def test_the_command_names_a_bad_worker_count(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("0", "-3", "two", "17"):
        with pytest.raises(SystemExit) as exit:
            cli.main(["trace", "--workers", bad])
        assert exit.value.code == 2
        error = capsys.readouterr().err
        assert "argument --workers: must be" in error and repr(bad) in error


def test_the_command_names_an_output_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing" / "trace.html"
    assert cli.main(["trace", "--format", "html", "--output", str(missing)]) == 2
    assert f"cannot write --output {str(missing)!r}" in capsys.readouterr().err
    assert not missing.parent.exists()
