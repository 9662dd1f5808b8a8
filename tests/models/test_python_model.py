"""The pool model (models/pool_model.py): exhaustive search of the real design, seeded bugs, steps."""

from __future__ import annotations

import dataclasses

import pytest

from models.explore import Counterexample, explore, main
from models.pool_model import (
    CLOSE,
    RUN,
    SENTINEL,
    TERMINATE,
    Action,
    Config,
    State,
    at_rest,
    enabled_actions,
    final_violations,
    initial_state,
    invariant_violations,
    step,
)

# --- (a) the real design: every interleaving, no violation ---------------------------

# Distinct reachable states per configuration (workers, tasks, max_crashes, maxtasks, depth,
# options). A change here means the model changed: look at why before updating the number.
# The state space grows fast with workers, tasks and depth: on two cores this table takes about
# 45 s. Three workers are searched with a crash only with maxtasks=1 and without terminate().
# These pass too but take from 8 s to half a minute each, so run them with `python -m
# models.explore` after a change to the model: --workers 3 --tasks 4 --crashes 1 (227,882 states;
# 211,836 with --no-terminate), --workers 2 --tasks 4 --crashes 1 --depth 3 (88,979), and
# --workers 2 --tasks 4 --crashes 1 --depth 4 --no-terminate (86,699).
REAL_DESIGN: dict[Config, int] = {
    Config(workers=1, tasks=4, max_crashes=2, maxtasks=None): 5576,
    Config(workers=1, tasks=4, max_crashes=2, maxtasks=1): 4614,
    Config(workers=1, tasks=4, max_crashes=2, maxtasks=2): 5195,
    Config(workers=1, tasks=4, max_crashes=2, depth=4): 6147,
    Config(workers=2, tasks=4, max_crashes=1, maxtasks=None): 66373,
    Config(workers=2, tasks=4, max_crashes=1, maxtasks=1): 15627,
    Config(workers=2, tasks=4, max_crashes=1, maxtasks=2): 60815,
    Config(workers=2, tasks=3, max_crashes=2, maxtasks=None): 64530,
    Config(workers=2, tasks=3, max_crashes=2, maxtasks=1): 20157,
    Config(workers=2, tasks=3, max_crashes=1, maxtasks=1, submit_upfront=False): 9625,
    Config(workers=2, tasks=3, max_crashes=1, maxtasks=None, submit_upfront=False): 15438,
    Config(workers=2, tasks=3, max_crashes=1, depth=3): 14269,
    Config(workers=2, tasks=4, max_crashes=0, depth=4): 3779,
    Config(workers=2, tasks=5, max_crashes=0, depth=3, allow_terminate=False): 16598,
    Config(workers=3, tasks=3, max_crashes=1, maxtasks=None): 29229,
    Config(workers=3, tasks=4, max_crashes=0, maxtasks=None): 9434,
    Config(workers=3, tasks=4, max_crashes=1, maxtasks=1, allow_terminate=False): 79931,
}


# The same search with the features of spec BUF, TIME and CANCEL on (Config.jobs, max_cancels,
# max_expiries, buffersize); without them the counts above are unchanged. About 25 s on two cores.
# Bigger ones pass too and take from 4 s to half a minute each (process time): --workers 2 --tasks 4
# --jobs 2 --cancels 1 --expiries 1 (156,683 states), --workers 3 --tasks 4 --expiries 1 (61,804),
# --workers 2 --tasks 4 --buffersize 2 --crashes 1 (33,353),
# --workers 2 --tasks 5 --depth 3 --expiries 1 --no-terminate (204,858: an expiry that races the
# worker's next claim takes back a task another worker can take), --workers 2 --tasks 5 --jobs 2
# --cancels 1 --depth 3 --no-terminate (137,919), --workers 2 --tasks 3 --jobs 2 --cancels 1
# --expiries 1 --crashes 1 --no-terminate (187,045).
REAL_DESIGN_NEW_FEATURES: dict[Config, int] = {
    Config(workers=2, tasks=4, jobs=2, max_cancels=1): 28368,
    Config(workers=2, tasks=3, jobs=2, max_cancels=1, max_crashes=1, allow_terminate=False): 52797,
    Config(workers=2, tasks=4, jobs=2, max_cancels=1, depth=3, allow_terminate=False): 26724,
    Config(workers=3, tasks=3, jobs=2, max_cancels=1): 12333,
    Config(workers=2, tasks=3, jobs=2, max_cancels=2, submit_upfront=False): 9087,
    Config(workers=1, tasks=3, jobs=2, max_cancels=2, max_crashes=2, depth=3): 14426,
    Config(workers=2, tasks=3, max_expiries=2): 10330,
    Config(workers=2, tasks=3, max_expiries=1, max_crashes=1, maxtasks=1): 22239,
    Config(workers=1, tasks=3, max_expiries=2, maxtasks=2): 1183,
    Config(workers=1, tasks=3, max_expiries=2, max_crashes=1, depth=3): 6115,
    Config(workers=2, tasks=3, jobs=2, max_cancels=1, max_expiries=1): 21598,
    Config(workers=2, tasks=4, buffersize=1, max_crashes=1): 5363,
    Config(workers=2, tasks=4, buffersize=1, max_expiries=1): 2961,
    Config(workers=1, tasks=3, buffersize=2, max_crashes=1): 2081,
}


def _name(config: Config) -> str:
    options = "" if config.submit_upfront else "-submit-while-running"
    options += "" if config.allow_terminate else "-no-terminate"
    options += f"-j{config.jobs}" if config.jobs > 1 else ""
    options += f"-cancels{config.max_cancels}" if config.max_cancels else ""
    options += f"-expiries{config.max_expiries}" if config.max_expiries else ""
    options += f"-buffer{config.buffersize}" if config.buffersize is not None else ""
    return (
        f"w{config.workers}-t{config.tasks}-c{config.max_crashes}-m{config.maxtasks}-d{config.depth}{options}"
    )


@pytest.mark.parametrize("config", list(REAL_DESIGN), ids=_name)
def test_the_real_design_has_no_violation_in_any_interleaving(config: Config) -> None:
    """Checks WORK-1, WORK-2, WORK-3, WORK-5, WORK-6, LOST-3, SHUT-1, SHUT-2 and JOB-1 in every
    reachable state, and SHUT-3, SHUT-4 and JOB-1 (every task settles exactly once) in every
    state at rest."""
    report = explore(config, stop_at_first=False)
    assert report.counterexamples == (), "\n\n".join(c.format() for c in report.counterexamples)
    assert report.complete
    assert report.states == REAL_DESIGN[config] > 0


@pytest.mark.parametrize("config", list(REAL_DESIGN_NEW_FEATURES), ids=_name)
def test_cancels_timeouts_and_buffered_imap_break_no_invariant_in_any_interleaving(config: Config) -> None:
    """Besides the clauses above: BUF-1 (a buffered imap's drawn tasks whose results are not taken
    never outnumber buffersize), CANCEL-1 (once a job is cancelled none of its tasks waits, is held
    unstarted or starts, and the job settles once, as cancelled), CANCEL-3 (the other jobs' tasks
    taken back at a cancel are handed out again and end once), TIME-2 (a task that ran past its time
    is never run again, and the tasks taken back at its expiry end once), JOB-1 for jobs (each settles
    once; at rest, every job whose tasks were all submitted has settled), and LOST-3 with workers
    killed at an expiry (no task fails as lost for them)."""
    report = explore(config, stop_at_first=False)
    assert report.counterexamples == (), "\n\n".join(c.format() for c in report.counterexamples)
    assert report.complete
    assert report.states == REAL_DESIGN_NEW_FEATURES[config] > 0


def test_the_new_features_are_off_by_default() -> None:
    """Config's defaults leave a search as it was before BUF, TIME and CANCEL were modelled (the
    counts of REAL_DESIGN): one job, nothing cancelled, no task expires, no buffered imap."""
    config = Config(workers=2, tasks=3, max_crashes=1, maxtasks=1)
    state = initial_state(config)
    assert config.jobs == 1 and config.job_of == (0, 0, 0) and config.job_tasks == (range(3),)
    assert state.job_settled == ((),) and state.wrongs == () and state.expiries == state.taken == 0
    names = {action.name for action in _actions_seen(config)}
    assert names >= {"offer", "claim", "crash", "reap"}
    assert not names & {"cancel", "expire", "take_result", "draw"}


def _actions_seen(config: Config, limit: int = 2000) -> set[Action]:
    """Every action enabled in the first `limit` states reached breadth-first."""
    seen, frontier, actions = {initial_state(config)}, [initial_state(config)], set()
    while frontier and len(seen) < limit:
        state = frontier.pop(0)
        for action in enabled_actions(state, config):
            actions.add(action)
            after = step(state, action, config)
            if after not in seen:
                seen.add(after)
                frontier.append(after)
    return actions


def test_the_search_is_deterministic() -> None:
    """The state count does not depend on hash order or on earlier runs (WORK-1, SHUT-4)."""
    config = Config(workers=2, tasks=3, max_crashes=1, maxtasks=1)
    assert explore(config).states == explore(config).states > 0


# --- (b) seeded bugs: a shortest counterexample, replayable -----------------------------

# (bug, bounds, the clause its shortest counterexample breaks first, that counterexample's length)
SEEDED: list[tuple[str, Config, str, int]] = [
    ("one_sentinel_too_few", Config(workers=2, tasks=2), "SHUT-2", 7),
    ("one_sentinel_too_few", Config(workers=2, tasks=3, max_crashes=1, maxtasks=2), "SHUT-2", 11),
    ("start_after_close", Config(workers=2, tasks=2, max_crashes=1), "WORK-2", 8),
    ("start_after_close", Config(workers=1, tasks=2, maxtasks=1), "WORK-2", 16),
    ("drop_task_on_crash", Config(workers=2, tasks=2, max_crashes=1), "WORK-3", 4),
    ("drop_task_on_crash", Config(workers=2, tasks=3, max_crashes=1, maxtasks=1), "WORK-3", 4),
    ("reap_not_reported", Config(workers=2, tasks=2, max_crashes=1), "WORK-1", 3),
    ("reap_not_reported", Config(workers=2, tasks=3, maxtasks=1), "WORK-1", 6),
    ("fail_all_on_crash", Config(workers=1, tasks=2, max_crashes=1), "LOST-3", 5),
    ("fail_all_on_crash", Config(workers=2, tasks=3, max_crashes=1), "LOST-3", 6),
    ("claim_without_lock", Config(workers=2, tasks=3), "WORK-6", 13),
    ("take_back_without_skip", Config(workers=2, tasks=3), "WORK-6", 10),
    ("take_back_without_skip", Config(workers=3, tasks=4, depth=3), "WORK-6", 11),
    ("no_take_back", Config(workers=2, tasks=3), "WORK-5", 6),
    ("cancel_leaves_inbox", Config(workers=1, tasks=2, jobs=2, max_cancels=1), "CANCEL-1", 2),
    ("cancel_leaves_inbox", Config(workers=2, tasks=3, jobs=2, max_cancels=1), "CANCEL-1", 2),
    ("cancel_drops_others", Config(workers=1, tasks=2, jobs=2, max_cancels=1), "CANCEL-3", 3),
    ("cancel_drops_others", Config(workers=2, tasks=3, jobs=2, max_cancels=1), "CANCEL-3", 4),
    ("timeout_requeues_running", Config(workers=1, tasks=1, max_expiries=1), "TIME-2", 3),
    ("timeout_requeues_running", Config(workers=2, tasks=2, max_expiries=1), "TIME-2", 3),
    ("expiry_keeps_worker", Config(workers=1, tasks=2, max_expiries=1), "LOST-3", 8),
    ("expiry_keeps_worker", Config(workers=2, tasks=3, max_expiries=1), "LOST-3", 8),
    ("refill_before_take", Config(workers=1, tasks=2, buffersize=1), "BUF-1", 1),
    ("refill_before_take", Config(workers=2, tasks=4, buffersize=2), "BUF-1", 1),
]


def _seeded(bug: str, config: Config) -> Config:
    return dataclasses.replace(config, bugs=frozenset({bug}))


def _replay(config: Config, example: Counterexample) -> State:
    state = initial_state(config)
    for action in example.path:
        state = step(state, action, config)  # raises if the path takes a disabled action
    return state


@pytest.mark.parametrize(
    ("bug", "bounds", "clause", "length"), SEEDED, ids=lambda v: _name(v) if isinstance(v, Config) else str(v)
)
def test_each_seeded_bug_gives_a_replayable_counterexample(
    bug: str, bounds: Config, clause: str, length: int
) -> None:
    """one_sentinel_too_few breaks SHUT-2, start_after_close WORK-2, drop_task_on_crash WORK-3,
    reap_not_reported WORK-1 (a worker that died or retired is not replaced), fail_all_on_crash
    LOST-3, claim_without_lock and take_back_without_skip WORK-6 (a task starts twice),
    no_take_back WORK-5, cancel_leaves_inbox CANCEL-1 (a task of the cancelled job stays
    in an inbox, unstarted), cancel_drops_others CANCEL-3, timeout_requeues_running TIME-2 (the
    task that ran past its time waits to run again), expiry_keeps_worker LOST-3 (a task handed to
    the killed worker fails as lost), refill_before_take BUF-1: the first line of the
    counterexample names the clause, and its path leads from the initial state to a state that
    breaks it."""
    config = _seeded(bug, bounds)
    report = explore(config)
    assert len(report.counterexamples) == 1
    example = report.counterexamples[0]
    assert example.format().splitlines()[0].startswith(f"{clause}: ")
    assert len(example.path) == length
    state = _replay(config, example)
    assert any(v.startswith(f"{clause}: ") for v in invariant_violations(state, config))
    # Breadth-first: no path one action shorter reaches a violation of any kind.
    everything = explore(config, stop_at_first=False)
    assert everything.complete
    assert min(len(c.path) for c in everything.counterexamples) == len(example.path)


def test_a_crashed_worker_whose_task_is_dropped_leaves_it_unsettled_at_rest() -> None:
    """drop_task_on_crash is lost work: besides WORK-3 in the state after the reap, the search
    to the end finds JOB-1 (a task that never settles) once the pool is at rest."""
    config = _seeded("drop_task_on_crash", Config(workers=2, tasks=2, max_crashes=1))
    examples = {c.clause: c for c in explore(config, stop_at_first=False).counterexamples}
    assert set(examples) >= {"WORK-3", "JOB-1"}
    example = examples["JOB-1"]
    state = _replay(config, example)
    assert at_rest(state, config)
    assert any(v.startswith("JOB-1: ") and "never settles" in v for v in final_violations(state, config))


def test_one_sentinel_too_few_deadlocks_join_when_no_later_step_serves_the_worker() -> None:
    """The worker left without a sentinel never exits (SHUT-3) and join() waits forever (SHUT-4).
    With two workers the next reap serves every worker and sends the missing sentinel, so only
    SHUT-2 breaks, for a while: the search to the end finds nothing else."""
    config = _seeded("one_sentinel_too_few", Config(workers=1, tasks=1))
    examples = {c.clause: c for c in explore(config, stop_at_first=False).counterexamples}
    assert set(examples) == {"SHUT-2", "SHUT-3", "SHUT-4"}
    state = _replay(config, examples["SHUT-4"])
    assert at_rest(state, config) and state.pool == CLOSE
    assert Action("join") not in enabled_actions(state, config)
    healed = _seeded("one_sentinel_too_few", Config(workers=2, tasks=1))
    assert {c.clause for c in explore(healed, stop_at_first=False).counterexamples} == {"SHUT-2"}


def test_a_task_of_a_cancelled_job_left_in_an_inbox_starts_after_the_cancel() -> None:
    """cancel_leaves_inbox: besides the unstarted task the cancel left held (its shortest
    counterexample), the worker then starts it: CANCEL-1 in its own words."""
    config = _seeded("cancel_leaves_inbox", Config(workers=1, tasks=2, jobs=2, max_cancels=1))
    state = _replay_actions(config, Action("offer", task=0), Action("cancel", job=0), Action("claim", 0))
    assert "CANCEL-1: task 0 started after its job 0 was cancelled" in invariant_violations(state, config)
    # The design takes it back instead: it never starts, and ends with its job.
    config = Config(workers=1, tasks=2, jobs=2, max_cancels=1)
    state = _run_steps(config, Action("offer", task=0), Action("cancel", job=0))
    assert state.workers[0].held == () and state.workers[0].revoked == 1
    assert state.settled == (("cancelled",), ()) and state.job_settled == (("cancelled",), ())
    assert _worker_steps(state, config) == [Action("skip", 0)]


def test_another_jobs_task_dropped_at_a_cancel_never_settles() -> None:
    """cancel_drops_others: besides CANCEL-3 and WORK-3 at the cancel, the search to the end finds
    JOB-1 at rest: the other job's task never ends, and neither does its job."""
    config = _seeded("cancel_drops_others", Config(workers=1, tasks=2, jobs=2, max_cancels=1))
    examples = {c.clause: c for c in explore(config, stop_at_first=False).counterexamples}
    assert set(examples) == {"CANCEL-3", "WORK-3", "JOB-1"}
    state = _replay(config, examples["JOB-1"])
    assert at_rest(state, config)
    finals = final_violations(state, config)
    assert {"JOB-1: task 1 never settles", "JOB-1: job 1 never settles"} <= set(finals)


def test_a_timed_out_task_requeued_runs_twice_and_settles_twice() -> None:
    """timeout_requeues_running: after TIME-2 at the expiry, the search to the end finds the task
    started a second time (WORK-6) and settled twice (JOB-1): the outcome the killed worker had
    sent, and the second run's."""
    config = _seeded("timeout_requeues_running", Config(workers=2, tasks=2, max_expiries=1))
    examples = {c.clause: c for c in explore(config, stop_at_first=False).counterexamples}
    assert set(examples) == {"TIME-2", "WORK-6", "WORK-3", "JOB-1"}
    assert examples["WORK-6"].violations[0] == "WORK-6: task 0 started twice"
    assert examples["JOB-1"].violations[0] == "JOB-1: task 0 settled 2 times: ok, ok"


def test_the_expiry_as_first_described_hands_a_task_to_the_killed_worker() -> None:
    """expiry_keeps_worker is the design as it was first written down: the expiry kills the worker
    but the roster keeps it as a live worker until it is seen exit. If the worker had sent the timed
    task's outcome just before the kill, reading that outcome frees it and serves it: it is handed
    the next task, which it never reads, and which fails as lost at the reap although it never ran
    (LOST-3; LOST-1 allows that only for a death the parent cannot foresee). refpool records the
    worker as exited at the kill (Roster._stop_for_timeout), and so does the model."""
    config = _seeded("expiry_keeps_worker", Config(workers=1, tasks=2, max_expiries=1))
    example = explore(config).counterexamples[0]
    assert [str(action) for action in example.path] == [
        "offer(task=0)",
        "offer(task=1)",
        "claim(worker=0)",
        "run(worker=0)",
        "expire(worker=0, task=0)",
        "read_outcome(worker=0, task=0)",
        "see_exit(worker=0)",
        "reap(worker=0)",
    ]
    state = _replay(config, example)
    assert state.settled == (("ok",), ("lost",)) and state.started == (1, 0)
    fixed = Config(workers=1, tasks=2, max_expiries=1)
    state = _run_steps(fixed, *example.path[:6])
    assert state.workers[0].held == () and state.ready == (1,)  # it waits for the replacement


def test_an_expiry_that_kills_no_worker_must_still_serve_the_tasks_it_took_back() -> None:
    """expiry_serves_only_kills is refpool's Roster.expire_due as first committed: it serves the
    workers only if it stopped one. When the worker finished the timed task and claimed the next
    between the timekeeper's reading `claimed` and its take-back, nothing is killed, but the tasks
    behind the new one were taken back: they wait in ready while another worker could take them
    (WORK-5), until some later step serves. (Searched to the first violation only: the full search
    of this configuration is 200,000 states.)"""
    config = _seeded("expiry_serves_only_kills", Config(workers=2, tasks=5, depth=3, max_expiries=1))
    example = explore(config).counterexamples[0]
    assert example.violations[0] == "WORK-5: tasks [4] wait in ready, yet workers [1] can take them"
    assert [str(action) for action in example.path[-4:]] == [
        "claim(worker=0)",
        "run(worker=0)",
        "claim(worker=0)",
        "expire(worker=0, task=0)",
    ]
    state = _replay(config, example)
    assert state.workers[0].alive and state.workers[0].stalled and state.workers[0].expired is None


def test_the_cli_prints_the_counterexample_one_action_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m models.explore --bug ...` exits 1, the SHUT-2 violation on its first line."""
    assert main(["--workers", "2", "--tasks", "2", "--bug", "one_sentinel_too_few"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("SHUT-2: ")
    assert [line.split(". ", 1)[1] for line in lines if ". " in line and line.strip()[0].isdigit()] == [
        "close()",
        "offer(task=0)",
        "offer(task=1)",
        "claim(worker=0)",
        "run(worker=0)",
        "read_outcome(worker=0, task=0)",
        "begin_closing()",
    ]


def test_the_cli_reports_a_complete_search(capsys: pytest.CaptureFixture[str]) -> None:
    """The real design passes (WORK-1, SHUT-4) and the CLI says how many states it saw."""
    assert main(["--workers", "2", "--tasks", "3", "--crashes", "1", "--maxtasks", "2", "--depth", "3"]) == 0
    assert capsys.readouterr().out.startswith("complete: ")


# --- (c) single steps, to read -------------------------------------------------------


def _run_steps(config: Config, *actions: Action) -> State:
    state = initial_state(config)
    for action in actions:
        state = step(state, action, config)
        assert invariant_violations(state, config) == []
    return state


def _offers(count: int) -> tuple[Action, ...]:
    return tuple(Action("offer", task=task) for task in range(count))


def _replay_actions(config: Config, *actions: Action) -> State:
    """As _run_steps, for a seeded bug: the invariants may break on the way."""
    state = initial_state(config)
    for action in actions:
        state = step(state, action, config)
    return state


def _worker_steps(state: State, config: Config) -> list[Action]:
    return [a for a in enabled_actions(state, config) if a.name in {"claim", "skip", "run", "exit"}]


def test_a_new_pool_runs_with_all_its_workers_and_offers_the_first_task() -> None:
    """LIFE-1: a constructed pool is in RUN with `processes` workers (WORK-1)."""
    config = Config(workers=2, tasks=2)
    state = initial_state(config)
    assert state.pool == RUN and [w.wid for w in state.workers if w.alive] == [0, 1]
    assert enabled_actions(state, config) == [Action("close"), Action("terminate"), Action("offer", task=0)]


def test_a_task_is_recorded_as_held_before_the_worker_claims_and_runs_it() -> None:
    """WORK-3: the parent records the holder, with the task's number, first; the worker claims
    it (WORK-6), runs it, and the hold ends when the outcome is read (JOB-1)."""
    config = Config(workers=1, tasks=1)
    state = _run_steps(config, Action("offer", task=0))
    assert state.workers[0].held == ((1, 0),) and state.workers[0].inbox == ((1, 0),)
    state = _run_steps(config, Action("offer", task=0), Action("claim", 0))
    assert state.workers[0].claimed == 1 and state.workers[0].running == 0 and state.started == (1,)
    state = _run_steps(config, Action("offer", task=0), Action("claim", 0), Action("run", 0))
    assert state.workers[0].held == ((1, 0),) and state.workers[0].outbox == (0,)
    state = step(state, Action("read_outcome", 0, 0), config)
    assert state.workers[0].held == () and state.settled == (("ok",),)


def test_tasks_go_to_the_least_busy_worker_up_to_depth_then_wait_in_ready() -> None:
    """WORK-3: a worker holds at most `depth` tasks; WORK-5: each goes to the least busy worker,
    and a task waits in ready only when no worker can take it."""
    config = Config(workers=2, tasks=5, depth=2)
    state = _run_steps(config, *_offers(5))
    assert [w.held for w in state.workers] == [((1, 0), (2, 2)), ((1, 1), (2, 3))]
    assert state.ready == (4,)
    # The first outcome read frees room: the worker that sent it takes the ready task.
    state = _run_steps(
        config, *_offers(5), Action("claim", 1), Action("run", 1), Action("read_outcome", 1, 1)
    )
    assert state.ready == () and state.workers[1].held == ((2, 3), (3, 4))


def test_an_idle_worker_takes_back_the_tasks_a_busy_one_has_not_started() -> None:
    """WORK-5, WORK-6 (claims.py, interleaving 2): the parent reads `claimed` and sets `revoked`;
    the task behind the running one goes to the idle worker; the victim, still running its
    oldest, is stalled, and skips the task taken back from it."""
    config = Config(workers=2, tasks=3)
    before = (*_offers(3), Action("claim", 0), Action("claim", 1), Action("run", 1))
    state = _run_steps(config, *before, Action("read_outcome", 1, 1))
    victim, idle = state.workers
    assert victim.claimed == 1 and victim.revoked == 2 and victim.held == ((1, 0),) and victim.stalled
    assert victim.handed == 1 and idle.held == ((2, 2),)
    state = _run_steps(config, *before, Action("read_outcome", 1, 1), Action("run", 0))
    assert enabled_actions(state, config).count(Action("skip", 0)) == 1
    state = step(state, Action("skip", 0), config)
    assert state.workers[0].inbox == () and state.started == (1, 1, 0)


def test_a_take_back_leaves_a_task_the_worker_has_claimed() -> None:
    """WORK-6 (claims.py, interleaving 1): the worker claimed its second task first, so the take-back
    finds nothing; the idle worker stays idle, and WORK-5 holds: every task behind an oldest
    has started."""
    config = Config(workers=2, tasks=3)
    state = _run_steps(
        config,
        *_offers(3),
        Action("claim", 0),
        Action("run", 0),
        Action("claim", 0),
        Action("claim", 1),
        Action("run", 1),
        Action("read_outcome", 1, 1),
    )
    victim, idle = state.workers
    assert victim.held == ((1, 0), (2, 2)) and victim.revoked == 2 and not victim.stalled
    assert idle.held == () and state.ready == ()


def test_the_parent_may_hand_a_task_to_a_dead_worker_it_has_not_seen_exit() -> None:
    """LOST-1: that task fails with WorkerLostError when the worker is reaped, and the worker
    handler is told, so the pool returns to `processes` workers (WORK-1, LOST-2)."""
    config = Config(workers=1, tasks=1, max_crashes=1)
    state = _run_steps(config, Action("crash", 0), Action("offer", task=0))
    assert not state.workers[0].alive and state.workers[0].inbox == ()  # sent into a dead pipe
    assert state.workers[0].held == ((1, 0),)
    state = _run_steps(
        config, Action("crash", 0), Action("offer", task=0), Action("see_exit", 0), Action("reap", 0)
    )
    assert state.settled == (("lost",),) and state.workers == () and state.notified
    state = step(state, Action("start_workers"), config)
    assert [w.wid for w in state.workers if w.alive] == [0]


def test_a_dead_worker_fails_its_oldest_task_and_the_ones_behind_run_elsewhere() -> None:
    """LOST-1: the oldest task fails; LOST-3: the ones behind it never started, go to the front
    of ready and are handed to a worker that can take them: the death fails one task."""
    config = Config(workers=2, tasks=4, max_crashes=1)
    crashed = (*_offers(4), Action("claim", 0), Action("crash", 0), Action("see_exit", 0))
    state = _run_steps(config, *crashed)
    assert state.workers[0].held == ((1, 0), (2, 2))
    state = _run_steps(config, *crashed, Action("reap", 0))
    assert state.settled == (("lost",), (), (), ()) and state.ready == (2,)  # worker 1 is full
    assert [w.wid for w in state.workers] == [1]
    state = step(state, Action("start_workers"), config)
    assert [w.wid for w in state.workers] == [1, 0] and state.workers[1].held == ((1, 2),)
    assert state.ready == ()


def test_an_exited_worker_is_reaped_only_after_its_outcomes_are_read() -> None:
    """LOST-1: every outcome a worker sent is read before it is reaped, so its task is not lost;
    once the parent has seen it exit, the outcome frees it for nothing new."""
    config = Config(workers=1, tasks=2, max_crashes=1)
    state = _run_steps(
        config, *_offers(2), Action("claim", 0), Action("run", 0), Action("crash", 0), Action("see_exit", 0)
    )
    assert Action("reap", 0) not in enabled_actions(state, config)
    state = step(state, Action("read_outcome", 0, 0), config)
    assert state.workers[0].held == ((2, 1),)
    state = step(state, Action("reap", 0), config)
    assert state.settled == (("ok",), ("lost",))


def test_sentinels_wait_for_closing_and_go_to_each_worker_once_it_is_idle() -> None:
    """SHUT-1: no sentinel before every task is offered, nor to a worker that holds a task, and no
    task after one; SHUT-2: one each, the busy worker's once its outcome is read."""
    config = Config(workers=2, tasks=1)
    state = _run_steps(config, Action("close"))
    assert Action("begin_closing") not in enabled_actions(state, config)
    state = _run_steps(config, Action("close"), Action("offer", task=0), Action("begin_closing"))
    assert [w.inbox for w in state.workers] == [((1, 0),), (SENTINEL,)]
    assert state.closing and [w.sentinels for w in state.workers] == [0, 1]
    state = _run_steps(
        config,
        Action("close"),
        Action("offer", task=0),
        Action("begin_closing"),
        Action("claim", 0),
        Action("run", 0),
        Action("read_outcome", 0, 0),
    )
    assert [w.inbox for w in state.workers] == [(SENTINEL,), (SENTINEL,)]


def test_a_worker_at_maxtasksperchild_gets_no_sentinel_and_exits_by_itself() -> None:
    """SHUT-2 and WORK-4: a worker handed its maxtasks tasks exits after running them."""
    config = Config(workers=2, tasks=1, maxtasks=1)
    state = _run_steps(config, Action("close"), Action("offer", task=0), Action("begin_closing"))
    assert [w.sentinels for w in state.workers] == [0, 1]
    state = step(step(state, Action("claim", 0), config), Action("run", 0), config)
    assert not state.workers[0].alive and state.workers[0].outbox == (0,)


def test_once_closing_workers_start_only_for_tasks_that_wait_in_ready() -> None:
    """WORK-2: after the last task is offered, a reaped worker is replaced only while tasks it
    left wait for a worker, one per task; with none, join() may return (SHUT-4)."""
    config = Config(workers=1, tasks=0)
    state = _run_steps(
        config, Action("close"), Action("begin_closing"), Action("exit", 0), Action("see_exit", 0)
    )
    state = step(step(state, Action("reap", 0), config), Action("start_workers"), config)
    assert state.workers == () and state.late_starts == 0
    assert Action("join") in enabled_actions(state, config)
    config = Config(workers=2, tasks=4, max_crashes=1)
    state = _run_steps(
        config,
        Action("close"),
        *_offers(4),
        Action("begin_closing"),
        Action("crash", 0),
        Action("see_exit", 0),
        Action("reap", 0),
        Action("start_workers"),
    )
    assert [w.wid for w in state.workers] == [1, 0] and state.workers[1].held == ((1, 2),)


def test_terminate_kills_every_worker_and_fails_every_unsettled_task() -> None:
    """SHUT-5: killed at once, PoolTerminatedError for what was pending; SHUT-3, JOB-1 at rest."""
    config = Config(workers=2, tasks=3)
    state = _run_steps(
        config,
        *_offers(3),
        Action("claim", 0),
        Action("run", 0),
        Action("read_outcome", 0, 0),
        Action("terminate"),
    )
    assert state.pool == TERMINATE and not any(w.alive for w in state.workers)
    assert state.settled == (("ok",), ("terminated",), ("terminated",))
    assert enabled_actions(state, config) == [Action("join")]
    assert at_rest(state, config) and final_violations(state, config) == []
    state = step(state, Action("join"), config)
    assert enabled_actions(state, config) == [] and final_violations(state, config) == []


def test_cancel_drops_the_jobs_unstarted_tasks_and_hands_out_the_others_again() -> None:
    """CANCEL-1: the job's tasks that have not started are taken back from the inboxes and dropped,
    and the job settles at once, as cancelled; its running task runs to its end and its outcome is
    discarded. CANCEL-3: the other job's tasks taken back with them go to the front of ready and
    are handed out again; the victim that keeps a started task is stalled (WORK-5)."""
    config = Config(workers=2, tasks=4, jobs=2, max_cancels=1)  # job 0: tasks 0 and 1; job 1: 2 and 3
    assert config.job_of == (0, 0, 1, 1)
    before = (*_offers(4), Action("claim", 0))
    state = _run_steps(config, *before)
    assert [w.held for w in state.workers] == [((1, 0), (2, 2)), ((1, 1), (2, 3))]
    state = _run_steps(config, *before, Action("cancel", job=0))
    running, other = state.workers
    assert running.held == ((1, 0),) and running.stalled and running.revoked == 2
    assert other.revoked == 2 and other.held == ((3, 3), (4, 2))  # w1's went first, as extendleft does
    assert state.settled == ((), ("cancelled",), (), ()) and state.job_settled == (("cancelled",), ())
    assert state.ready == () and state.started == (1, 0, 0, 0)
    state = _run_steps(
        config, *before, Action("cancel", job=0), Action("run", 0), Action("read_outcome", 0, 0)
    )
    assert state.settled[0] == ("ok",) and state.job_settled == (("cancelled",), ())  # discarded
    assert Action("cancel", job=0) not in enabled_actions(state, config)  # settled: cancel() is False


def test_a_task_of_a_cancelled_job_still_in_the_task_queue_is_never_offered() -> None:
    """CANCEL-1: the task handler drops it (it ended with its job's cancel) and offers the next."""
    config = Config(workers=1, tasks=3, jobs=2, max_cancels=1)  # job 0: tasks 0 and 1; job 1: 2
    state = _run_steps(config, Action("offer", task=0), Action("cancel", job=0))
    assert state.settled == (("cancelled",), ("cancelled",), ())
    state = _run_steps(config, Action("offer", task=0), Action("cancel", job=0), Action("offer", task=1))
    assert state.offered == 2 and state.workers[0].held == () and state.ready == ()
    state = step(state, Action("offer", task=2), config)
    assert state.workers[0].held == ((2, 2),)


def test_a_task_past_its_time_kills_its_worker_and_fails_as_timeout() -> None:
    """TIME-2: the task behind it is taken back, to run elsewhere; the worker is killed and recorded
    as exited at once, so it is handed nothing more; at the reap the task fails as "timeout", not
    lost, and its job with it; the worker is replaced (WORK-1)."""
    config = Config(workers=1, tasks=2, max_expiries=1)
    before = (*_offers(2), Action("claim", 0))
    state = _run_steps(config, *before, Action("expire", 0, 0))
    killed = state.workers[0]
    assert not killed.alive and killed.exited and killed.expired == 0 and killed.held == ((1, 0),)
    assert state.ready == (1,) and state.expiries == 1
    assert Action("see_exit", 0) not in enabled_actions(state, config)
    state = _run_steps(config, *before, Action("expire", 0, 0), Action("reap", 0))
    assert state.settled == (("timeout",), ()) and state.job_settled == (("timeout",),)
    state = step(state, Action("start_workers"), config)
    assert state.workers[0].held == ((1, 1),) and state.started == (1, 0)


def test_a_timed_task_that_finished_before_the_kill_keeps_its_outcome() -> None:
    """TIME-2: the outcome the worker sent before it was killed is read; nothing fails at the reap."""
    config = Config(workers=1, tasks=1, max_expiries=1)
    state = _run_steps(
        config,
        Action("offer", task=0),
        Action("claim", 0),
        Action("run", 0),
        Action("expire", 0, 0),
        Action("read_outcome", 0, 0),
        Action("reap", 0),
    )
    assert state.settled == (("ok",),) and state.job_settled == (("ok",),)


def test_an_expiry_that_finds_a_later_task_claimed_kills_nothing() -> None:
    """TIME-2 (Roster._stop_for_timeout): the worker finished the timed task and claimed the next
    between the timekeeper's reading `claimed` and its take-back. The tasks behind the new one are
    taken back all the same (the worker is stalled); the worker is left alone, the timed task keeps
    its outcome."""
    config = Config(workers=1, tasks=3, depth=3, max_expiries=1)
    state = _run_steps(
        config, *_offers(3), Action("claim", 0), Action("run", 0), Action("claim", 0), Action("expire", 0, 0)
    )
    worker = state.workers[0]
    assert worker.alive and not worker.exited and worker.expired is None and worker.stalled
    assert worker.held == ((1, 0), (2, 1)) and state.ready == (2,)


def test_a_buffered_imap_draws_one_task_after_each_result_taken() -> None:
    """BUF-1: `buffersize` tasks are drawn when imap is called, then one each time the consumer takes
    a result, after taking it; after close() nothing more is drawn (BUF-4)."""
    config = Config(workers=2, tasks=3, buffersize=1)
    state = initial_state(config)
    assert state.submitted == 1 and Action("submit", task=1) not in enabled_actions(state, config)
    done = (Action("offer", task=0), Action("claim", 0), Action("run", 0), Action("read_outcome", 0, 0))
    state = _run_steps(config, *done)
    assert Action("take_result", task=0) in enabled_actions(state, config)
    state = step(state, Action("take_result", task=0), config)
    assert (state.submitted, state.taken) == (2, 1)
    state = _run_steps(config, *done, Action("close"), Action("take_result", task=0))
    assert (state.submitted, state.taken) == (1, 1)


def test_step_refuses_an_action_that_is_not_enabled() -> None:
    """LIFE-3 in the model: join() in RUN is not a step the pool can take."""
    config = Config(workers=1, tasks=1)
    with pytest.raises(ValueError, match=r"join\(\) is not enabled"):
        step(initial_state(config), Action("join"), config)


def test_a_config_names_what_is_wrong_with_it() -> None:
    with pytest.raises(ValueError, match="unknown bugs"):
        Config(bugs=frozenset({"no_such_bug"}))
    with pytest.raises(ValueError, match="maxtasks must be a positive int"):
        Config(maxtasks=0)
    with pytest.raises(ValueError, match="depth=0"):
        Config(depth=0)
    with pytest.raises(ValueError, match="jobs must be from 1 to tasks=2"):
        Config(tasks=2, jobs=3)
    with pytest.raises(ValueError, match="buffersize must be None or > 0"):
        Config(buffersize=0)
    with pytest.raises(ValueError, match="a buffered imap is one job"):
        Config(tasks=2, jobs=2, buffersize=1)
