"""The pool model (models/pool_model.py): exhaustive search of the real design, seeded bugs, steps."""

from __future__ import annotations

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


def _name(config: Config) -> str:
    options = "" if config.submit_upfront else "-submit-while-running"
    options += "" if config.allow_terminate else "-no-terminate"
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
    ("fail_all_on_crash", Config(workers=1, tasks=2, max_crashes=1), "LOST-3", 5),
    ("fail_all_on_crash", Config(workers=2, tasks=3, max_crashes=1), "LOST-3", 6),
    ("claim_without_lock", Config(workers=2, tasks=3), "WORK-6", 13),
    ("take_back_without_skip", Config(workers=2, tasks=3), "WORK-6", 10),
    ("take_back_without_skip", Config(workers=3, tasks=4, depth=3), "WORK-6", 11),
    ("no_take_back", Config(workers=2, tasks=3), "WORK-5", 6),
]


def _seeded(bug: str, config: Config) -> Config:
    return Config(
        workers=config.workers,
        tasks=config.tasks,
        max_crashes=config.max_crashes,
        maxtasks=config.maxtasks,
        depth=config.depth,
        bugs=frozenset({bug}),
    )


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
    fail_all_on_crash LOST-3, claim_without_lock and take_back_without_skip WORK-6 (a task starts
    twice), no_take_back WORK-5: the first line of the counterexample names the clause, and its
    path leads from the initial state to a state that breaks it."""
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
