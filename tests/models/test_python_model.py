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

# Distinct reachable states per configuration (workers, tasks, max_crashes, maxtasks, options).
# A change here means the model changed: look at why before updating the number.
# 3 workers x 4 tasks with 2 crashes is only searched with maxtasks None and 1, to keep the
# file under a minute on two cores; the other 3 x 4 configurations allow one crash.
REAL_DESIGN: dict[Config, int] = {
    Config(workers=1, tasks=4, max_crashes=2, maxtasks=None): 1293,
    Config(workers=1, tasks=4, max_crashes=2, maxtasks=1): 1043,
    Config(workers=1, tasks=4, max_crashes=2, maxtasks=2): 1152,
    Config(workers=2, tasks=4, max_crashes=2, maxtasks=None): 22834,
    Config(workers=2, tasks=4, max_crashes=2, maxtasks=1): 10488,
    Config(workers=2, tasks=4, max_crashes=2, maxtasks=2): 18713,
    Config(workers=3, tasks=4, max_crashes=1, maxtasks=None): 85348,
    Config(workers=3, tasks=4, max_crashes=1, maxtasks=1): 31783,
    Config(workers=3, tasks=4, max_crashes=1, maxtasks=2): 71102,
    Config(workers=3, tasks=4, max_crashes=2, maxtasks=None): 218264,
    Config(workers=3, tasks=4, max_crashes=2, maxtasks=1): 75924,
    Config(workers=2, tasks=3, max_crashes=1, maxtasks=1, submit_upfront=False): 3956,
    Config(workers=3, tasks=4, max_crashes=1, maxtasks=None, submit_upfront=False): 116194,
    Config(workers=2, tasks=4, max_crashes=2, maxtasks=2, allow_terminate=False): 12149,
    Config(workers=3, tasks=4, max_crashes=1, maxtasks=1, allow_terminate=False): 21773,
}


def _name(config: Config) -> str:
    options = "" if config.submit_upfront else "-submit-while-running"
    options += "" if config.allow_terminate else "-no-terminate"
    return f"w{config.workers}-t{config.tasks}-c{config.max_crashes}-m{config.maxtasks}{options}"


@pytest.mark.parametrize("config", list(REAL_DESIGN), ids=_name)
def test_the_real_design_has_no_violation_in_any_interleaving(config: Config) -> None:
    """Checks WORK-1, WORK-2, WORK-3, SHUT-1, SHUT-2 and JOB-1 in every reachable state, and
    SHUT-3, SHUT-4 and JOB-1 (every task settles exactly once) in every state at rest."""
    report = explore(config, stop_at_first=False)
    assert report.counterexamples == (), "\n\n".join(c.format() for c in report.counterexamples)
    assert report.complete
    assert report.states == REAL_DESIGN[config] > 0


def test_the_search_is_deterministic() -> None:
    """The state count does not depend on hash order or on earlier runs (WORK-1, SHUT-4)."""
    config = Config(workers=2, tasks=3, max_crashes=1, maxtasks=2)
    assert explore(config).states == explore(config).states > 0


# --- (b) seeded bugs: a shortest counterexample, replayable -----------------------------

SEEDED: list[tuple[str, Config, str]] = [
    ("one_sentinel_too_few", Config(workers=2, tasks=2, max_crashes=0), "SHUT-2"),
    ("one_sentinel_too_few", Config(workers=3, tasks=4, max_crashes=1, maxtasks=2), "SHUT-2"),
    ("start_after_close", Config(workers=2, tasks=2, max_crashes=1), "WORK-2"),
    ("start_after_close", Config(workers=1, tasks=2, max_crashes=0, maxtasks=1), "WORK-2"),
    ("drop_task_on_crash", Config(workers=2, tasks=2, max_crashes=1), "WORK-3"),
    ("drop_task_on_crash", Config(workers=3, tasks=4, max_crashes=1, maxtasks=1), "WORK-3"),
]


def _seeded(bug: str, config: Config) -> Config:
    return Config(
        workers=config.workers,
        tasks=config.tasks,
        max_crashes=config.max_crashes,
        maxtasks=config.maxtasks,
        bugs=frozenset({bug}),
    )


def _replay(config: Config, example: Counterexample) -> State:
    state = initial_state(config)
    for action in example.path:
        state = step(state, action, config)  # raises if the path takes a disabled action
    return state


@pytest.mark.parametrize(("bug", "bounds", "clause"), SEEDED, ids=lambda v: getattr(v, "workers", v))
def test_each_seeded_bug_gives_a_replayable_counterexample(bug: str, bounds: Config, clause: str) -> None:
    """one_sentinel_too_few breaks SHUT-2, start_after_close WORK-2, drop_task_on_crash WORK-3: the
    first line of the counterexample names the clause, and its path leads from the initial state
    to a state that breaks it."""
    config = _seeded(bug, bounds)
    report = explore(config)
    assert len(report.counterexamples) == 1
    example = report.counterexamples[0]
    assert example.format().splitlines()[0].startswith(f"{clause}: ")
    state = _replay(config, example)
    assert any(v.startswith(f"{clause}: ") for v in invariant_violations(state, config))
    # Breadth-first: no path one action shorter reaches a violation of any kind.
    shorter = explore(config, stop_at_first=False).counterexamples
    assert min(len(c.path) for c in shorter) == len(example.path)


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


def test_one_sentinel_too_few_also_deadlocks_join() -> None:
    """The worker left without a sentinel never exits (SHUT-3) and join() waits forever (SHUT-4)."""
    config = _seeded("one_sentinel_too_few", Config(workers=2, tasks=1))
    examples = {c.clause: c for c in explore(config, stop_at_first=False).counterexamples}
    assert {"SHUT-2", "SHUT-3", "SHUT-4"} <= set(examples)
    state = _replay(config, examples["SHUT-4"])
    assert at_rest(state, config) and state.pool == CLOSE
    assert Action("join") not in enabled_actions(state, config)


def test_the_cli_prints_the_counterexample_one_action_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m models.explore --bug ...` exits 1, the SHUT-2 violation on its first line."""
    assert main(["--workers", "2", "--tasks", "2", "--bug", "one_sentinel_too_few"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("SHUT-2: ")
    assert [line.split(". ", 1)[1] for line in lines if ". " in line and line.strip()[0].isdigit()] == [
        "close()",
        "hand_out(worker=0, task=0)",
        "hand_out(worker=1, task=1)",
        "send_sentinels()",
    ]


def test_the_cli_reports_a_complete_search(capsys: pytest.CaptureFixture[str]) -> None:
    """The real design passes (WORK-1, SHUT-4) and the CLI says how many states it saw."""
    assert main(["--workers", "2", "--tasks", "3", "--crashes", "1", "--maxtasks", "2"]) == 0
    assert capsys.readouterr().out.startswith("complete: ")


# --- (c) single steps, to read -------------------------------------------------------


def _run_steps(config: Config, *actions: Action) -> State:
    state = initial_state(config)
    for action in actions:
        state = step(state, action, config)
        assert invariant_violations(state, config) == []
    return state


def test_a_new_pool_runs_with_all_its_workers_and_any_may_take_the_first_task() -> None:
    """LIFE-1: a constructed pool is in RUN with `processes` workers (WORK-1)."""
    config = Config(workers=2, tasks=2)
    state = initial_state(config)
    assert state.pool == RUN and [w.wid for w in state.workers if w.alive] == [0, 1]
    assert enabled_actions(state, config) == [
        Action("close"),
        Action("terminate"),
        Action("hand_out", worker=0, task=0),
        Action("hand_out", worker=1, task=0),
    ]


def test_a_task_is_recorded_as_held_before_the_worker_runs_it() -> None:
    """WORK-3: the parent records the holder first; the hold ends when the outcome is read (JOB-1)."""
    config = Config(workers=1, tasks=1)
    state = _run_steps(config, Action("hand_out", 0, 0))
    assert state.workers[0].held == 0 and state.workers[0].inbox == (0,)
    state = _run_steps(config, Action("hand_out", 0, 0), Action("run", 0))
    assert state.workers[0].held == 0 and state.workers[0].outbox == (0,)
    state = step(state, Action("read_outcome", 0, 0), config)
    assert state.workers[0].held is None and state.settled == (("ok",),)


def test_a_busy_worker_takes_nothing_more() -> None:
    """WORK-3: a worker holds at most one task, so task 1 goes to the idle worker (WORK-5)."""
    config = Config(workers=2, tasks=2)
    state = _run_steps(config, Action("hand_out", 0, 0))
    assert [a for a in enabled_actions(state, config) if a.name == "hand_out"] == [Action("hand_out", 1, 1)]


def test_the_parent_may_hand_a_task_to_a_dead_worker_it_has_not_reaped_yet() -> None:
    """LOST-1: that task fails with WorkerLostError when the worker is reaped, and the worker
    handler is told, so the pool returns to `processes` workers (WORK-1, LOST-2)."""
    config = Config(workers=1, tasks=1, max_crashes=1)
    state = _run_steps(config, Action("crash", 0), Action("hand_out", 0, 0))
    assert not state.workers[0].alive and state.workers[0].inbox == ()  # sent into a dead pipe
    state = _run_steps(config, Action("crash", 0), Action("hand_out", 0, 0), Action("reap", 0))
    assert state.settled == (("lost",),) and state.workers == () and state.notified
    state = step(state, Action("start_workers"), config)
    assert [w.wid for w in state.workers if w.alive] == [0]


def test_an_exited_worker_is_reaped_only_after_its_outcomes_are_read() -> None:
    """LOST-1: every outcome a worker sent is read before it is reaped, so its task is not lost."""
    config = Config(workers=1, tasks=1, max_crashes=1)
    state = _run_steps(config, Action("hand_out", 0, 0), Action("run", 0), Action("crash", 0))
    assert Action("reap", 0) not in enabled_actions(state, config)
    state = step(state, Action("read_outcome", 0, 0), config)
    state = step(state, Action("reap", 0), config)
    assert state.settled == (("ok",),)


def test_sentinels_wait_for_close_and_for_the_last_task() -> None:
    """SHUT-1: no sentinel in RUN, nor before the last task is handed out; SHUT-2: then one each."""
    config = Config(workers=2, tasks=1)
    state = initial_state(config)
    assert Action("send_sentinels") not in enabled_actions(state, config)
    state = _run_steps(config, Action("close"))
    assert Action("send_sentinels") not in enabled_actions(state, config)
    state = _run_steps(config, Action("close"), Action("hand_out", 1, 0), Action("send_sentinels"))
    assert [w.inbox for w in state.workers] == [(SENTINEL,), (0, SENTINEL)]
    assert [w.sentinels for w in state.workers] == [1, 1]


def test_a_worker_at_maxtasksperchild_gets_no_sentinel_and_exits_by_itself() -> None:
    """SHUT-2 and WORK-4: a worker handed its maxtasks tasks exits after running them."""
    config = Config(workers=2, tasks=1, maxtasks=1)
    state = _run_steps(config, Action("close"), Action("hand_out", 0, 0), Action("send_sentinels"))
    assert [w.sentinels for w in state.workers] == [0, 1]
    state = step(state, Action("run", 0), config)
    assert not state.workers[0].alive and state.workers[0].outbox == (0,)


def test_no_worker_starts_once_shutdown_has_begun() -> None:
    """WORK-2: after the sentinels, a reaped worker is not replaced."""
    config = Config(workers=1, tasks=0)
    state = _run_steps(
        config, Action("close"), Action("send_sentinels"), Action("exit", 0), Action("reap", 0)
    )
    state = step(state, Action("start_workers"), config)
    assert state.workers == () and state.late_starts == 0
    assert Action("join") in enabled_actions(state, config)


def test_terminate_kills_every_worker_and_fails_every_unsettled_task() -> None:
    """SHUT-5: killed at once, PoolTerminatedError for what was pending; SHUT-3, JOB-1 at rest."""
    config = Config(workers=2, tasks=3)
    state = _run_steps(
        config, Action("hand_out", 0, 0), Action("run", 0), Action("read_outcome", 0, 0), Action("terminate")
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
