"""Mutants of the back of the pool: WORK, LOST, SHUT, BUF, TIME and CANCEL clauses."""

from __future__ import annotations

from tests.matrix.mutant import Mutant

WORKERS: tuple[Mutant, ...] = (
    # --- WORK: workers and who holds which task ---------------------------
    Mutant(
        "exit-not-reported",
        clauses=("WORK-1",),
        file="refpool/result_handler.py",
        find="""            self._cache.deliver(*lost, False, self._lost_error(record, lost, exited.exitcode))
        self._worker_reaped()""",
        replace=(
            "            self._cache.deliver(*lost, False, self._lost_error(record, lost, exited.exitcode))"
        ),
        why="the result handler does not tell the worker handler that a worker died, so it is never replaced",
        tests=("tests/test_lost_workers.py",),
        oracle=("WORK-1",),
        model_bugs=("explorer:reap_not_reported",),
    ),
    Mutant(
        "start-after-close",
        clauses=("WORK-2",),
        file="refpool/roster.py",
        find="        return min(processes - live, waiting)",
        replace="        return processes - live",
        why="once the pool is closing, every worker that exits is replaced, though no task waits for one",
        tests=("tests/test_roster.py", "tests/contracts/test_crosshair.py::test_contracts_hold"),
        model_bugs=("explorer:start_after_close", "spin:BUG_START_AFTER_CLOSE"),
    ),
    Mutant(
        "one-task-too-many-in-flight",
        clauses=("WORK-3",),
        file="refpool/roster.py",
        find="    if held >= depth or retiring(handed_out, maxtasks):",
        replace="    if held > depth or retiring(handed_out, maxtasks):",
        why="a worker may hold depth + 1 tasks, one more than its inbox is meant to hold",
        tests=("tests/test_roster.py", "tests/contracts/test_crosshair.py::test_contracts_hold"),
    ),
    Mutant(
        "retire-one-task-late",
        clauses=("WORK-3",),
        file="refpool/roster.py",
        find="    return maxtasks is not None and handed_out >= maxtasks",
        replace="    return maxtasks is not None and handed_out > maxtasks",
        why="a worker is handed maxtasksperchild + 1 tasks, and the last is lost when it exits at its quota",
        tests=("tests/test_mutation_gaps.py", "tests/contracts/test_crosshair.py::test_contracts_hold"),
        oracle=("WORK-4",),
    ),
    Mutant(
        "quota-off-by-one",
        clauses=("WORK-4",),
        file="refpool/worker.py",
        find="    while maxtasks is None or completed < maxtasks:",
        replace="    while maxtasks is None or completed <= maxtasks:",
        why="a worker that has done maxtasksperchild tasks waits for one more, which the roster never sends",
        tests=("tests/test_mutation_gaps.py::test_each_worker_runs_exactly_maxtasksperchild_tasks",),
        oracle=("WORK-4",),
    ),
    Mutant(
        "no-take-back",
        clauses=("WORK-5",),
        file="refpool/roster.py",
        find="""        if self._rebalance(record, touched):
            return
""",
        replace="",
        why="a worker that becomes idle takes nothing back from a busy one: tasks wait behind a long one",
        tests=("tests/test_pipelining.py", "tests/test_roster.py"),
        oracle=("WORK-5",),
        model_bugs=("explorer:no_take_back", "spin:BUG_NO_TAKE_BACK"),
    ),
    Mutant(
        "take-back-not-skipped",
        clauses=("WORK-6",),
        file="refpool/claims.py",
        find="""            if not may_start(number, counters[1]):
                return False
""",
        replace="",
        why="a worker runs a task the pool took back from it and gave to another: it runs twice",
        tests=("tests/test_pipelining.py", "tests/stateful/test_pool_machine.py"),
        oracle=("BUF-6",),
        model_bugs=("explorer:take_back_without_skip", "spin:BUG_TAKE_BACK_WITHOUT_SKIP"),
    ),
    Mutant(
        "last-revoked-task-starts",
        clauses=("WORK-6",),
        file="refpool/claims.py",
        find="    return number > revoked",
        replace="    return number >= revoked",
        why="a worker starts the last task taken back from it, which also runs in the worker it was given to",
        tests=("tests/test_pipelining.py", "tests/contracts/test_crosshair.py::test_contracts_hold"),
    ),
    Mutant(
        "revoked-bytes-not-counted",
        clauses=("WORK-7",),
        file="refpool/roster.py",
        find="                record.held_bytes + record.revoked_bytes,",
        replace="                record.held_bytes,",
        why="tasks taken back but still unread in a worker's pipe are not counted against its budget",
        tests=("tests/test_roster.py", "tests/test_pipelining.py"),
    ),
    Mutant(
        "failed-start-serves-nobody",
        clauses=("WORK-8",),
        file="refpool/worker_handler.py",
        find="""            except Exception as error:  # no fds, no memory: the caller retries
                failure = error""",
        replace="""            except Exception:  # no fds, no memory: the caller retries
                raise""",
        why="when a worker start fails, the workers started before it are not given their tasks",
        tests=("tests/test_worker_handler.py",),
    ),
    # --- LOST: workers that die -------------------------------------------
    Mutant(
        "drop-task-on-crash",
        clauses=("LOST-1",),
        file="refpool/roster.py",
        find="            lost = keys[0] if keys else None",
        replace="            lost = None",
        why="the oldest task of a dead worker is forgotten instead of failed: its job never settles",
        tests=(
            "tests/test_roster.py::test_a_dead_workers_oldest_task_is_lost_and_the_ones_behind_it_go_to_others",
            "tests/test_lost_workers.py",
        ),
        oracle=("LOST-1",),
        model_bugs=("explorer:drop_task_on_crash", "spin:BUG_DROP_TASK_ON_CRASH"),
    ),
    Mutant(
        "unwatch-the-survivors",
        clauses=("LOST-2",),
        file="refpool/roster.py",
        find="        self._handles = tuple(h for h in self._handles if h.worker_id != worker_id)",
        replace="        self._handles = tuple(h for h in self._handles if h.worker_id == worker_id)",
        why="removing a dead worker keeps only it among the watched handles: the others' outcomes go unread",
        tests=("tests/test_lost_workers.py",),
        oracle=("LOST-2",),
    ),
    Mutant(
        "second-held-task-dropped",
        clauses=("LOST-3",),
        file="refpool/roster.py",
        find="            requeued = [_ready_again(k, record.held[k]) for k in keys[1:]]",
        replace="            requeued = [_ready_again(k, record.held[k]) for k in keys[2:]]",
        why="the first task queued behind a dead worker's running one is neither run elsewhere nor failed",
        tests=("tests/test_pipelining.py", "tests/test_lost_workers.py"),
        oracle=("LOST-3",),
    ),
    Mutant(
        "initializer-fails-one-late",
        clauses=("LOST-4",),
        file="refpool/roster.py",
        find="if self.initializer_failures < INITIALIZER_FAILURES_BEFORE_FAILING or self.terminating:",
        replace="if self.initializer_failures <= INITIALIZER_FAILURES_BEFORE_FAILING or self.terminating:",
        why="tasks fail only from the fourth initializer failure in a row, not the third",
        tests=("tests/test_initializer.py", "tests/test_matrix_holes_workers.py"),
        oracle=("LOST-4",),
    ),
    # --- SHUT: shutting down --------------------------------------------
    Mutant(
        "sentinel-then-task",
        clauses=("SHUT-1",),
        file="refpool/roster.py",
        find="""            and not record.got_shutdown
            and can_take(""",
        replace="""            and can_take(""",
        why="a worker sent its sentinel may be handed a task that came back to ready, and never runs it",
        tests=("tests/test_roster.py", "tests/test_matrix_holes_workers.py"),
    ),
    Mutant(
        "one-sentinel-too-few",
        clauses=("SHUT-2",),
        file="refpool/roster.py",
        find="        for record in sorted(self.workers.values(), key=lambda r: len(r.held)):",
        replace="        for record in sorted(self.workers.values(), key=lambda r: len(r.held))[1:]:",
        why="serving every worker skips the least busy one, so at close the idle worker gets no sentinel",
        tests=("tests/test_roster.py",),
        oracle=("SHUT-4",),
        model_bugs=("explorer:one_sentinel_too_few", "spin:BUG_ONE_SENTINEL_TOO_FEW"),
    ),
    Mutant(
        "sentinel-ignored",
        clauses=("SHUT-3",),
        file="refpool/worker.py",
        find="""        if isinstance(received, Shutdown):
            return True""",
        replace="""        if isinstance(received, Shutdown):
            continue""",
        why="a worker reads its sentinel and waits for another task instead of exiting",
        tests=("tests/test_shutdown.py::test_after_close_and_join_no_worker_or_handler_is_alive",),
        oracle=("SHUT-4",),
    ),
    Mutant(
        "join-waits-for-no-thread",
        clauses=("SHUT-4", "SHUT-6"),
        file="refpool/core.py",
        find="        if thread is not current and thread.ident is not None:",
        replace="        if thread is not current and thread.ident is None:",
        why="join() and terminate() wait for no handler thread: join() returns while they still run",
        tests=("tests/test_shutdown.py",),
        oracle=("SHUT-4", "SHUT-6"),
    ),
    Mutant(
        "terminate-leaves-jobs-pending",
        clauses=("SHUT-5", "BUF-5"),
        file="refpool/core.py",
        find="""        self.cache.abandon_all(
            lambda: PoolTerminatedError("the pool was terminated before this job finished")
        )
""",
        replace="",
        why="terminate() fails no unsettled job: get() and a buffered next() wait forever (as CPython)",
        tests=(
            "tests/test_shutdown.py::test_terminate_fails_pending_jobs_instead_of_leaving_them",
            "tests/test_buffered.py",
        ),
        oracle=("SHUT-5", "BUF-5"),
    ),
    Mutant(
        "join-leaves-worker-threads",
        clauses=("SHUT-6",),
        file="refpool/core.py",
        find="""            for handle in self.roster.handles():
                handle.join()
        # A terminate()""",
        replace="""        # A terminate()""",
        why="join() after terminate() does not wait for the worker threads, which end their tasks after it",
        tests=("tests/test_shutdown.py", "tests/test_matrix_holes_workers.py"),
        oracle=("SHUT-6",),
        target="refpool-threads",
    ),
    Mutant(
        "join-keeps-transport-open",
        clauses=("SHUT-7",),
        file="refpool/core.py",
        find="""            self._terminated.wait()
        self._release_when_stopped()""",
        replace="""            self._terminated.wait()""",
        why="close() then join() leaves the transport's wake pipe and selector to the garbage collector",
        tests=("tests/test_shutdown.py::test_pools_leave_no_file_descriptors_behind",),
        oracle=("SHUT-6", "SHUT-7"),
    ),
    Mutant(
        "exited-worker-pipes-kept",
        clauses=("SHUT-7",),
        file="refpool/result_handler.py",
        find="""        record.handle.join()
        with record.writing:  # no thread may be writing to the inbox being closed
            self._transport.release(record.handle)""",
        replace="""        record.handle.join()""",
        why="a worker seen gone keeps its pipes and claim word open until the pool is joined",
        tests=("tests/test_matrix_holes_workers.py",),
        oracle=("SHUT-7",),
    ),
    Mutant(
        "worker-keeps-last-task",
        clauses=("SHUT-8",),
        file="refpool/worker.py",
        find="""        del received
""",
        replace="",
        why="a worker waiting for its next task still references the last one, its function and arguments",
        oracle=("SHUT-8",),
        target="refpool-threads",  # a thread worker's task is the caller's own objects: the oracle sees them
    ),
    Mutant(
        "pool-not-watched",
        clauses=("SHUT-10",),
        file="refpool/worker.py",
        find="""    watch_pool(pool_pid)
    if not worker_loop""",
        replace="""    if not worker_loop""",
        why="a worker does not watch the pool's process, so it outlives a pool whose process was killed",
        tests=(
            "tests/reliability/test_interrupts.py::test_a_parent_killed_while_its_workers_wait_leaves_no_worker",
        ),
    ),
    Mutant(
        "terminate-leaves-task-handler-waiting",
        clauses=("SHUT-4", "SHUT-9"),
        file="refpool/core.py",
        find="""        self._taskqueue.put(TERMINATED)
""",
        replace="",
        why="terminate() does not wake the task handler, then waits for it forever, at exit after Ctrl-C too",
        tests=("tests/reliability/test_interrupts.py::test_ctrl_c_during_map_leaves_no_orphan_worker",),
        oracle=("SHUT-4",),
    ),
    Mutant(
        "feed-lock-per-call",
        clauses=("SHUT-11",),
        file="refpool/buffered.py",
        find="""        \"\"\"Draw and submit tasks while there are free slots and the input lasts.\"\"\"
        with self._lock:""",
        replace="""        \"\"\"Draw and submit tasks while there are free slots and the input lasts.\"\"\"
        with threading.Lock():""",
        why="the feed takes a new lock at each call: threads sharing a buffered imap read its input at once",
        tests=("tests/test_matrix_holes_workers.py",),
    ),
    # --- BUF: bounded imap -------------------------------------------------
    Mutant(
        "refill-before-take",
        clauses=("BUF-1",),
        file="refpool/buffered.py",
        find=(
            "        success, value = self._job._next_outcome(timeout)  "
            "# StopIteration, TimeoutError: nothing taken\n"
            "        if self._feed is not None:\n"
            "            self._feed.took_one()\n"
        ),
        replace=(
            "        if self._feed is not None:\n"
            "            self._feed.took_one()\n"
            "        success, value = self._job._next_outcome(timeout)  "
            "# StopIteration, TimeoutError: nothing taken\n"
        ),
        why="the consumer frees a slot before it has a result: the pool draws buffersize + 1 while it waits",
        tests=("tests/test_buffered.py", "tests/test_matrix_holes_workers.py"),
        oracle=("BUF-1",),
        model_bugs=("explorer:refill_before_take", "spin:BUG_REFILL_BEFORE_TAKE"),
    ),
    Mutant(
        "draw-one-too-many",
        clauses=("BUF-1",),
        file="refpool/buffered.py",
        find="    return drawn - taken < buffersize",
        replace="    return drawn - taken <= buffersize",
        why="the feed draws buffersize + 1 tasks whose results the caller has not taken",
        tests=("tests/test_buffered.py", "tests/contracts/test_crosshair.py::test_contracts_hold"),
        oracle=("BUF-1",),
    ),
    Mutant(
        "buffersize-zero-accepted",
        clauses=("BUF-2",),
        file="refpool/pool.py",
        find="    elif buffersize < 1:",
        replace="    elif buffersize < 0:",
        why="buffersize=0 is accepted, and the imap then draws nothing and waits forever",
        tests=("tests/test_buffered.py",),
        oracle=("BUF-2",),
    ),
    Mutant(
        "draw-in-task-handler",
        clauses=("BUF-3",),
        file="refpool/pool.py",
        find="""        if bound is not None:
            return self._buffered_imap(kind, func, items, chunksize, bound, limit)
        calls: Iterator[Call]
        if chunksize == 1:
            calls = (Call(func, (item,), {}) for item in items)
        else:
            calls = (Call(mapstar, ((func, chunk),), {}) for chunk in chunked(items, chunksize))
        # An input of known size is a collection in memory: reading it never waits.
        in_memory = isinstance(iterable, Sized)
        result: IMapIterator[Any] = self._submit(lambda: kind(core.cache, self), calls, in_memory, limit)
        if chunksize == 1:
            return result
        return IMapResults(result, None, chunked=True)""",
        replace="""        slots: Any = None if bound is None else threading.Semaphore(bound)
        if slots is not None:
            slots.took_one = slots.release  # a slot is freed per result taken
            items = (item for item in items if slots.acquire())
        calls: Iterator[Call]
        if chunksize == 1:
            calls = (Call(func, (item,), {}) for item in items)
        else:
            calls = (Call(mapstar, ((func, chunk),), {}) for chunk in chunked(items, chunksize))
        in_memory = isinstance(iterable, Sized) and slots is None
        result: IMapIterator[Any] = self._submit(lambda: kind(core.cache, self), calls, in_memory, limit)
        if chunksize == 1 and slots is None:
            return result
        return IMapResults(result, slots, chunked=chunksize > 1)""",
        why="CPython 3.16's design: the task handler draws a buffered input and waits there for a free slot",
        # No pytest file: their pools' teardown waits for the blocked task handler, past every timeout.
        oracle=("BUF-3",),
        target="refpool-threads",
    ),
    Mutant(
        "close-ends-input-silently",
        clauses=("BUF-4",),
        file="refpool/buffered.py",
        find="            self._end(UnreadInputError(self.items_drawn))  # BUF-4: never ended in silence",
        replace="""            self._open = False
            self._job._set_length(self.drawn)""",
        why="after close() a partly read input ends the iterator as if exhausted (CPython's gh-155477)",
        tests=("tests/test_buffered.py",),
        oracle=("BUF-4",),
    ),
    Mutant(
        "closed-iterator-not-cancelled",
        clauses=("BUF-6",),
        file="refpool/buffered.py",
        find="""        if self._feed is not None:
            self._job.cancel()""",
        replace="",
        why="closing a buffered imap iterator does not cancel its job: its queued tasks still run",
        tests=("tests/test_buffered.py", "tests/test_cancel.py"),
        oracle=("BUF-6",),
    ),
    # --- TIME: per-task timeouts -------------------------------------------
    Mutant(
        "claim-time-not-recorded",
        clauses=("TIME-1",),
        file="refpool/claims.py",
        find="""            counters[2] = time.monotonic_ns()
""",
        replace="",
        why="the worker does not record when it claimed a task: every timed task looks due once it starts",
        tests=("tests/test_task_timeouts.py",),
        oracle=("TIME-1",),
    ),
    Mutant(
        "timeout-reported-as-lost",
        clauses=("TIME-2",),
        file="refpool/result_handler.py",
        find="        if record.timed_out is not None and record.timed_out[0] == lost:",
        replace="        if record.timed_out is not None and record.timed_out[0] != lost:",
        why="a task stopped for its timeout fails with WorkerLostError, not TaskTimeoutError",
        tests=("tests/test_task_timeouts.py",),
        oracle=("TIME-2",),
    ),
    Mutant(
        "timed-out-worker-not-stopped",
        clauses=("TIME-2",),
        file="refpool/roster.py",
        find="""            self._observe(TaskTimedOut(record.worker_id, *key, timeout))
        record.handle.stop_now()""",
        replace="""            self._observe(TaskTimedOut(record.worker_id, *key, timeout))""",
        why="a task past its timeout is not stopped: it runs on; its worker, given nothing more, never exits",
        tests=("tests/test_task_timeouts.py",),
        oracle=("TIME-2",),
    ),
    Mutant(
        "task-timeout-is-a-wait-timeout",
        clauses=("TIME-3",),
        file="refpool/errors.py",
        find="class TaskTimeoutError(builtins.TimeoutError):",
        replace="class TaskTimeoutError(TimeoutError):",
        why="TaskTimeoutError is a multiprocessing.TimeoutError: code that waits again on it loops",
        tests=("tests/test_task_timeouts.py",),
        oracle=("TIME-3",),
    ),
    Mutant(
        "thread-pool-takes-timeouts",
        clauses=("TIME-4",),
        file="refpool/pool.py",
        find="""    def _check_task_timeout(self, timeout: object) -> float | None:
        limit = check_task_timeout(timeout)""",
        replace="""    def _check_timeout(self, timeout: object) -> float | None:
        limit = check_task_timeout(timeout)""",
        why="ThreadPool's check is misnamed and overrides nothing: it accepts a timeout it cannot enforce",
        tests=("tests/test_task_timeouts.py",),
        oracle=("TIME-4",),
        target="refpool-threads",
    ),
    # --- CANCEL: cancelling a job -------------------------------------------
    Mutant(
        "cancel-leaves-inbox",
        clauses=("CANCEL-1",),
        file="refpool/roster.py",
        find="""                back, _ = self._take_back(record)
                dropped += [key for key, _ in back if key[0] == job_id]""",
        replace="""                back = []
                dropped += [key for key, _ in back if key[0] == job_id]""",
        why="cancel drops the job's tasks in ready but takes none back from workers' inboxes: those run",
        tests=("tests/test_cancel.py",),
        oracle=("CANCEL-1",),
        model_bugs=("explorer:cancel_leaves_inbox", "spin:BUG_CANCEL_LEAVES_INBOX"),
    ),
    Mutant(
        "cancel-callback-in-caller",
        clauses=("CANCEL-2",),
        file="refpool/jobs.py",
        find="            self._cache.in_callback_thread(lambda: self._settle(False, error))",
        replace="            self._settle(False, error)",
        why="a cancelled job's error_callback runs in the caller's thread, not where every callback runs",
        tests=("tests/test_cancel.py",),
        oracle=("CANCEL-2",),
    ),
    Mutant(
        "cancel-drops-others",
        clauses=("CANCEL-3",),
        file="refpool/roster.py",
        find="                self._put_back([(key, held) for key, held in back if key[0] != job_id])\n",
        replace="",
        why="cancel drops the other jobs' tasks it takes back with the cancelled ones: those never finish",
        tests=("tests/test_cancel.py",),
        oracle=("CANCEL-3",),
        model_bugs=("explorer:cancel_drops_others", "spin:BUG_CANCEL_DROPS_OTHERS"),
    ),
)
