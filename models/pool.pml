/* pool.pml: refpool's task protocol (several tasks in flight, claims, take-back), worker loss and
   shutdown, cancelling a job, per-task timeouts and the bounded imap, for SPIN (spec clauses WORK,
   LOST, SHUT, JOB, CANCEL, TIME, BUF).

Theory of operation. The processes below are refpool's parts (refpool/core.py):

    Caller --taskq--> TaskHandler                Worker(w) --outbox[w]--> ResultHandler
                      (offers each task)         ^ claims each task       (settles outcomes; on
                            |                    | (claimed, revoked),     `exits`, reaps the
                            v                    | runs it or skips it     worker)
                         Roster --inbox[w]-------+
                      (who holds what;           WorkerHandler: on CHANGED starts workers;
                       WRITE_LATER: outq[w],     on STOP ends.
                       then the Writer)
    Terminator (TERMINATE=1): terminate() from another thread, at any moment or never.
    Canceller (CANCEL=k): cancel() on job A (tasks 1..k), at any moment before it settles, or never.
    Timekeeper (TIMEOUTS=1): the time of a task a worker has claimed is up, at any moment, or never.
    With BUFFER=b the caller is an imap with buffersize b that it consumes in order.

The roster (refpool/roster.py) is the globals live[], rank[], held (HT/HN: each worker's tasks and
their numbers, oldest first), nheld[], last_number[], stalled[], got_shutdown[], exited[], ready[],
closing and terminating. Every step under `roster.cond` is done by the Roster process: a handler
calls it by rendezvous from inside its own atomic step (SPIN passes atomicity to the receiver), so
reading a pipe and the roster step it causes are one step, and the roster's code is expanded once
(a verifier that compiles in seconds). Each step ends with check_invariants(). Each worker's claim
word (refpool/claims.py) is claimed[w] and revoked[w], shared by the worker and the parent; a
claim and a take-back are each one atomic step (the claim word's record lock).

The protocol, as modelled:
- Several tasks in flight: a worker holds up to DEPTH tasks (refpool: 4 for a process), each
  recorded as held, with its number among the tasks sent to that worker (1, 2, ...), before it is
  written (WORK-3); it runs them in the order received. `ready` holds the offered tasks that no
  worker can take now; a task waits there only while no worker can take it (WORK-5). A worker can
  take a task when it is in the roster, not seen exited, has no sentinel, holds fewer than DEPTH,
  and holds nothing or is not stalled; the least busy such worker gets it.
- Claims: before starting task number n, the worker claims it under the claim lock: if
  n <= revoked it skips it (no run, no outcome), else claimed = n and it runs it. A take-back,
  under the same lock: read claimed, set revoked to the last number sent; every held task
  numbered above claimed is the parent's again and goes to the front of `ready` (WORK-6).
- Serving a worker (Roster._serve), in the step that frees it: it takes ready tasks while it can;
  if it then holds nothing and nothing is ready, the unstarted tasks of the busiest worker holding
  two or more are taken back (the next busiest's if all had started), put at the front of `ready`
  and handed out one at a time to the least busy workers that can take them (WORK-5); a victim
  left holding started tasks is stalled: it takes nothing new until it holds nothing. If nothing
  can be taken back and the pool is closing, the worker gets its sentinel (SHUT-1, SHUT-2: lazily).
- Death: once all it sent has been read, a dead worker's oldest task fails (WorkerLostError) and
  the ones behind it, never started, go to the front of `ready` for other workers (LOST-1, LOST-3).
- Shutdown: after close(), once every task has been offered, the task handler makes the pool
  closing and every worker is served (Roster.begin_closing); a busy worker gets its sentinel when
  it becomes idle. While the pool may grow the worker handler keeps N workers (WORK-1); once it is
  closing, it starts workers only for tasks that wait in `ready`, no more than there are (WORK-2).
  The result handler stops once the pool is closing with no worker and no ready task left
  (Roster.finished), and stops the worker handler.
- Cancel (CANCEL-1, CANCEL-3), one roster step: the job settles (JobCancelledError: every task of
  it that has not ended ends here); every worker that holds a task of it has everything it has not
  claimed taken back, as in any take-back; the job's tasks in `ready`, those just taken back among
  them, are dropped, and the other job's go out again (serve_all); a victim left holding its
  running task is stalled. The task handler drops the job's tasks it offers later (it checks under
  cond). A task of the job that had started runs to its end, and its outcome, read as usual, frees
  the worker and is discarded (the job has settled: the first settle wins).
- Timeout (TIME-2), one roster step: when a claimed task's time is up the timekeeper takes back
  all its worker has not claimed (to the front of `ready`, then serve_all), and if the worker is
  still on that task (claimed is its number) kills it: the worker runs nothing more (an outcome it
  wrote before is still read) and the roster gives it nothing more. When it is reaped the task,
  if still held, fails with TaskTimeoutError (not WorkerLostError: no other task fails, and it
  never runs again); if its outcome was read, it keeps it. The worker is replaced (WORK-1).
  Giving the killed worker nothing is the model's finding: TIMEOUT_KILLED_TAKES_TASKS leaves it in
  the roster as a taker until it is seen to have exited, and SPIN shows a task of another job, never
  started, handed to it and failed with WorkerLostError (tests/models/test_spin.py).
- Bounded imap (BUF-1): the caller draws BUFFER tasks at the call, then one each time it takes a
  result (in order; a failed task's error is a result too), after taking it.

Abstractions, on purpose:
- Writes. refpool appends what a roster step hands a worker to the worker's outgoing FIFO (under
  `cond`), and whichever thread next holds the worker's `writing` lock writes all of it, in order,
  after leaving `cond` (roster.write_outgoing). Tasks and sentinels alike go through that FIFO, so
  a write that comes later is, to everyone, a worker that reads later: by default the roster step
  writes into the inbox at once. WRITE_LATER=1 models the FIFO (outq[w]) and a Writer process
  that empties one worker's FIFO into its inbox at any later moment (tests/models/test_spin.py
  checks a configuration with it); BUG_SENTINEL_OVERTAKES_TASK (which implies it) writes the
  sentinel past the FIFO, and a task taken back, still queued, reaches the worker after it. A
  worker reaped from the roster loses its queue (refpool writes it to the dead pipe).
- Worker slots are reused, so the state space stays bounded; a replacement gets fresh pipes and
  a fresh claim word, and joins the end of the roster (rank). Ties between equally busy workers
  go to the first in the roster, as refpool's dict gives them; ANY_ORDER breaks every tie every
  possible way instead (more states), to show that nothing depends on it.
- A worker receives and claims (or skips) a task in one step, and runs it and sends its outcome
  in another: so a take-back can find a task claimed but unfinished, and a worker can die running
  it (claimed) or before claiming its next. With BUG_CLAIM_WITHOUT_LOCK the claim's read of
  `revoked` and its write of `claimed` are two steps.
- Steps that touch only a handler's own data are merged with the roster step they lead to:
  reading an outcome and settling it; seeing a worker exited (Roster.exited), draining its pipe and
  removing it (refpool settles other outcomes of the same batch in between, which only keeps the
  dead worker from being given tasks; it can be a take-back's victim either way). A job is
  settled in the step that frees its task. Locals and scratch variables are reset after use.
- The result handler watches every slot's outbox; refpool watches the handles it read from the
  roster and is woken when they change. Its wake-ups after begin_closing and terminate's kill are
  modelled (channel `wake`). The task handler's wait for room in `ready` is a guard, READY_LIMIT
  tasks (refpool: 64, then woken at 32).
- Process workers only; every task fits a worker's inbox budget (the budget is not modelled), and
  there is no maxtasksperchild. A thread worker's inbox is a deque whose two ends play the claim
  word (claims.ThreadInbox).
- Once the pool is terminating the parent heeds nothing a worker does, so a worker then only
  takes a sentinel already sent or dies by terminate's kill, which can come at any point (a
  thread stops after its task: the same, to the parent). A crash is never forced: a worker
  stuck waiting that could still crash is not a terminal state, so `done` sees a hang only
  where no crash is left (tests/models/test_spin.py checks `done` without crashes too).
- Two jobs at most (CANCEL): job A is tasks 1..CANCEL, job B the rest, submitted together; only A
  may be cancelled. Job A's settlement is a flag (a_settled: its last task ended, one failed, JOB-6,
  or it was cancelled); every other check is per task. Callbacks are not modelled, so a cancelled
  job settles at the cancel step (with an error_callback refpool settles it once that has run,
  CANCEL-2; what the workers do is the same). Cancel, timeouts and the buffered imap are
  not modelled with terminate(), and the buffered imap not with the other two (#error): each is
  its own configuration, and the existing ones keep their size.
- Every task is timed, and TIMEOUTS bounds the expiries in a run (as CRASHES the crashes). A
  task's time may be up at any moment from its claim to the read of its outcome, so also once the
  worker has written it, or has gone on to its next task.

Macros: N workers (1..4), T tasks, DEPTH (tasks a worker holds at most, 2..4), CRASHES (bound on
worker crashes), TERMINATE (0/1), WRITE_LATER (0/1), ANY_ORDER, CANCEL (tasks in job A, 0..T-1),
TIMEOUTS (0/1: expiries), BUFFER (the imap's buffersize; 0: map_async). Seeded bugs, each found
by tests/models/test_spin.py: BUG_ONE_SENTINEL_TOO_FEW (begin_closing skips one idle worker's
sentinel), BUG_START_AFTER_CLOSE (the worker handler starts N - live workers once closing),
BUG_DROP_TASK_ON_CRASH (a dead worker's oldest task is forgotten), BUG_FAIL_ALL_ON_CRASH (a death
fails every task the worker held), BUG_SENTINEL_OVERTAKES_TASK, BUG_NO_HANDOUT_ON_OUTCOME (a freed
worker is not served), BUG_NO_TAKE_BACK (an idle worker takes nothing back), BUG_CLAIM_WITHOUT_LOCK,
BUG_TAKE_BACK_WITHOUT_SKIP (the worker runs a task numbered <= revoked), BUG_CANCEL_LEAVES_INBOX
(cancel drops the job's ready tasks but takes nothing back: a cancelled task runs),
BUG_CANCEL_DROPS_OTHERS (the other job's tasks taken back at cancel are dropped: one never ends),
BUG_TIMEOUT_REQUEUES_RUNNING (at expiry the running timed task goes back to `ready` too: it runs
twice), BUG_REFILL_BEFORE_TAKE (imap's next() draws before it takes: B + 1 tasks drawn untaken);
each of the last four turns its feature on. TIMEOUT_KILLED_TAKES_TASKS is the timeout design
without its fix (above), and JOIN_MISSES_LATE_TERMINATE a join() that waits only for a
terminate() begun before it (with TERMINATE=1). START_UNCHECKED drops the WORK-6 check at a
task's start, to show that the count of runs finds the claim bugs too; CANCEL_UNCHECKED drops the
CANCEL-1 invariant, to show that the check at a task's start finds BUG_CANCEL_LEAVES_INBOX too.
Run with models/spin_check.py.
*/

#ifndef N
#define N 2
#endif
#ifndef T
#define T 3
#endif
#ifndef DEPTH
#define DEPTH 2
#endif
#ifndef CRASHES
#define CRASHES 1
#endif
#ifndef TERMINATE
#define TERMINATE 0
#endif
#if defined(BUG_SENTINEL_OVERTAKES_TASK) && !defined(WRITE_LATER)
#define WRITE_LATER 1  /* the bug is in a write that comes later */
#endif
#ifndef WRITE_LATER
#define WRITE_LATER 0
#endif
/* A seeded bug in a feature turns the feature on, with the size its test needs. */
#if (defined(BUG_CANCEL_LEAVES_INBOX) || defined(BUG_CANCEL_DROPS_OTHERS)) && !defined(CANCEL)
#define CANCEL 2
#endif
#if defined(BUG_TIMEOUT_REQUEUES_RUNNING) && !defined(TIMEOUTS)
#define TIMEOUTS 1
#endif
#if defined(BUG_REFILL_BEFORE_TAKE) && !defined(BUFFER)
#define BUFFER 2
#endif
#ifndef CANCEL
#define CANCEL 0             /* tasks 1..CANCEL are job A, which may be cancelled; the rest job B */
#endif
#ifndef TIMEOUTS
#define TIMEOUTS 0           /* 1: one running task's time may be up, at any moment (TIME-2) */
#endif
#ifndef BUFFER
#define BUFFER 0             /* the caller's imap buffersize (0: map_async, every task at once) */
#endif
#if N < 1 || N > 4
#error "pool.pml models 1 to 4 workers"
#endif
#if CANCEL < 0 || CANCEL >= T
#error "CANCEL is how many of the T tasks job A has: job B keeps at least one (CANCEL-3)"
#endif
#if TERMINATE && (CANCEL || TIMEOUTS || BUFFER)
#error "terminate() is not modelled together with cancel, timeouts or a buffered imap"
#endif
#if TIMEOUTS < 0 || TIMEOUTS > 1
#error "the model keeps one timed-out worker at a time (timed_worker): TIMEOUTS is 0 or 1"
#endif
#if BUFFER && (CANCEL || TIMEOUTS)
#error "the buffered imap is its own configuration: one job, no cancel, no timeout"
#endif
#if DEPTH < 2 || DEPTH > 4
#error "pool.pml models workers that hold 2 to 4 tasks"
#endif

mtype = { TASK, SENTINEL, CHANGED, STOP };

/* Lifecycle states (refpool/lifecycle.py); changed only under the lifecycle lock (atomic). */
#define S_RUN 1
#define S_CLOSE 2
#define S_TERMINATE 3
/* The marks on the task queue after the tasks 1..T (task_handler.CLOSED, TERMINATED). */
#define CLOSED_MARK 254
#define TERMINATED_MARK 255
#define NONE 255
/* The roster's steps (the Roster process's requests). */
#define OFFER 1              /* Roster.offer(task) */
#define BEGIN_CLOSING 2      /* Roster.begin_closing() */
#define SETTLE 3             /* Roster.settle(worker, task) */
#define REAP 4             /* Roster.exited(worker), its outcomes settled, Roster.reap(worker) */
#define SERVE_ALL 5          /* Roster.serve_all(), after WorkerHandler.maintain has started workers */
#define CANCEL_JOB 6         /* cancel() on job A: settle it, drop or take back its tasks (CANCEL-1) */
#define EXPIRE 7             /* the time of the task rt, running in worker rw, is up (TIME-2) */
/* What one worker's inbox (or outgoing queue) can hold: tasks taken back stay in it, unread. */
#define QUEUE (T + DEPTH + 1)
#define READY_LIMIT N        /* Roster.ready_limit, scaled down: the task handler waits for room */

byte state = S_RUN;
bool closed;                 /* close() was called (the state may be TERMINATE since) */
byte submitted;              /* tasks 1..submitted were accepted */
byte prepared;               /* tasks 1..prepared were offered: handed out, or put in `ready` */
byte runs[T + 1];            /* runs[t]: how many times a worker has started (claimed) task t */
bool settled[T + 1];         /* settled[t]: task t has its outcome or its error (or was cancelled) */
byte nsettled;
#if CANCEL
bool cancelled;              /* cancel() on job A returned True */
bool a_settled;              /* job A has settled: all its tasks ended, one failed (JOB-6), or cancel */
byte a_left = CANCEL;        /* tasks of job A that have not ended */
#define IS_A(t) ((t) <= CANCEL)
#define CANCELLED(t) (cancelled && IS_A(t))
#else
#define CANCELLED(t) false
#endif
#if TIMEOUTS
byte timeouts;               /* expiries so far */
byte timed_worker = NONE;    /* the worker killed when its task's time was up, until reaped ... */
byte timed_task;             /* ... and that task */
#endif
#if BUFFER
byte taken;                  /* results the caller has taken from the imap, in order */
#endif

/* The roster. */
bool live[N];                /* slot w holds a worker that the result handler has not reaped */
byte nlive;
byte rank[N];                /* its place in Roster.workers, a dict: in the order workers joined */
byte held_task[N * DEPTH];   /* the tasks worker w holds, oldest first (HT) ... */
byte held_num[N * DEPTH];    /* ... and their numbers among the tasks sent to it (HN) */
byte nheld[N];
byte last_number[N];         /* of the last task sent to worker w */
bool stalled[N];             /* tasks were taken back behind a task it runs */
bool got_shutdown[N];        /* it has been sent its sentinel: nothing more goes to it */
bool exited[N];              /* seen to have exited (the result handler marks it before draining its pipe) */
byte ready[T];               /* tasks offered that wait for a worker, in order */
byte nready;
bool closing;                /* closed, and every task offered (Roster.closing) */
bool terminating;

/* Each worker's claim word (claims.SharedClaimWord), shared by the worker and the parent. */
byte claimed[N];             /* the number of the last task it has started */
byte revoked[N];             /* its unstarted tasks numbered up to here are the parent's again */

bool sentinel_written[N];    /* the sentinel is in worker w's inbox */
byte nrunning;               /* worker processes that have not exited */
bool killed[N];              /* the pool killed the worker in slot w: terminate(), or an expiry */
byte crashes;

bool task_handler_done, result_handler_done, worker_handler_done;
bool terminate_started, terminate_done;
bool joined;                 /* join() has returned */

chan taskq = [T + 2] of { byte };                       /* tasks, then CLOSED_MARK and/or TERMINATED_MARK */
chan roster_call = [0] of { byte };                     /* a roster step: what (worker and task in rw, rt) */
#if WRITE_LATER
chan outq[N] = [QUEUE] of { mtype, byte, byte };        /* record.outgoing: TASK(t, number) or SENTINEL */
#endif
chan inbox[N] = [QUEUE] of { mtype, byte, byte };       /* the worker's inbox pipe */
chan outbox[N] = [DEPTH] of { byte };                   /* worker -> parent: the outcome of task t */
chan exits = [N] of { byte };                            /* worker w exited (its exit descriptor) */
chan wake = [1] of { bit };                             /* the result handler's self-pipe */
chan worker_requests = [N + CRASHES + 3] of { mtype };  /* CHANGED (worker exited) or STOP */

/* Scratch: set before use inside one step, reset to 0 at its end. */
byte rw, rt;                 /* the worker and the task of a roster step (roster_call) */
byte si, sj, sk, st, sn, spick, smask, smin, sback[DEPTH], snback, sclaimed;
byte sa_w, sa_held[N];       /* the workers a roster step serves, and in which order */
bool sdone;
bool held_at_start;          /* the task a worker starts is one the roster records it holds */
byte lost_here;              /* tasks failed by the death being handled (LOST-3) */
#ifdef BUG_ONE_SENTINEL_TOO_FEW
bool skip_one_sentinel;
#endif
hidden byte ci_t, ci_w, ci_i, ci_n, ci_r, ci_idle;  /* check_invariants' (not in the state) */
hidden byte sc_v, sc_i, sc_n;  /* cancel's, expiry's and join's scratch (not in the state) */

#define HT(w, i) held_task[(w) * DEPTH + (i)]
#define HN(w, i) held_num[(w) * DEPTH + (i)]
/* A worker the roster may give tasks: in it, not seen exited, not sent its sentinel, and not
   killed. A worker killed at a task's expiry stays in the roster until it is seen to have exited, and a
   task given to it meanwhile would fail with WorkerLostError (LOST-1) although it never started:
   TIME-2 says the other jobs are unaffected. (Before terminate kills, nothing is given out any
   more.) TIMEOUT_KILLED_TAKES_TASKS leaves the killed worker a taker, and SPIN finds that. */
#ifdef TIMEOUT_KILLED_TAKES_TASKS
#define GIVABLE(w) (live[w] && !exited[w] && !got_shutdown[w])
#else
#define GIVABLE(w) (live[w] && !exited[w] && !got_shutdown[w] && !killed[w])
#endif
/* Roster._can_take (no maxtasksperchild, every task within the inbox budget). */
#define CAN_TAKE(w) (GIVABLE(w) && nheld[w] < DEPTH && (nheld[w] == 0 || !stalled[w]))
/* Idle (spec, Words): it holds no task and may be given one. */
#define IDLE(w) (GIVABLE(w) && nheld[w] == 0)
/* Roster.missing(): roster.workers_to_start (WORK-1, WORK-2). */
#ifdef BUG_START_AFTER_CLOSE
#define MISSING (terminating -> 0 : N - nlive)
#else
#define MISSING (terminating -> 0 : (closing -> (N - nlive < nready -> N - nlive : nready) : N - nlive))
#endif
#define FINISHED (terminating || (closing && nlive == 0 && nready == 0))  /* Roster.finished() */
/* A roster step that makes no choice is one transition (d_step). With ANY_ORDER ties are
   choices, so it is an atomic sequence. */
#ifdef ANY_ORDER
#define ROSTER_STEP atomic
#else
#define ROSTER_STEP d_step
#endif

/* The roster's invariants, asserted at the end of every step that changes it. */
inline check_invariants() {
  assert(nlive <= N && nrunning <= N);  /* WORK-1: never more than N live workers */
  ci_idle = false;
  ci_w = 0;
  do
  :: ci_w < N ->
     assert(nheld[ci_w] <= DEPTH);  /* WORK-3: a worker holds at most DEPTH tasks */
     ci_idle = ci_idle || IDLE(ci_w);
     ci_w++
  :: else -> break
  od;
  ci_t = 1;
  do
  :: ci_t <= T ->
     ci_n = 0;  /* workers that hold task ci_t */
     ci_w = 0;
     do
     :: ci_w < N ->
        ci_i = 0;
        do
        :: ci_i < nheld[ci_w] -> ci_n = ci_n + (HT(ci_w, ci_i) == ci_t); ci_i++
        :: else -> break
        od;
        ci_w++
     :: else -> break
     od;
     ci_r = 0;  /* times task ci_t waits in `ready` */
     ci_i = 0;
     do
     :: ci_i < nready -> ci_r = ci_r + (ready[ci_i] == ci_t); ci_i++
     :: else -> break
     od;
     /* WORK-3: a task is held by at most one worker, and never both held and waiting */
     assert(ci_n + ci_r <= 1);
     /* WORK-6, LOST-3: a task that waits in `ready` (taken back, or left by a dead worker) has
        not started */
     assert(ci_r == 0 || runs[ci_t] == 0);
     if
     :: !terminating ->
        /* WORK-3: an offered, unsettled task is held by exactly one worker or waits in `ready`;
           a settled one by none */
        assert(ci_t > prepared || settled[ci_t] || ci_n + ci_r == 1);
#if CANCEL
#ifndef CANCEL_UNCHECKED
        /* CANCEL-1: once its job is cancelled, a task waits nowhere, and a worker holds it only
           while it runs it (it started before the cancel; its outcome will be discarded) */
        assert(!CANCELLED(ci_t) || ci_r == 0 && (ci_n == 0 || runs[ci_t] == 1));
#endif
        assert(!settled[ci_t] || ci_r == 0 && (ci_n == 0 || CANCELLED(ci_t)))
#else
        assert(!settled[ci_t] || ci_n + ci_r == 0)
#endif
     :: else
     fi;
     ci_t++
  :: else -> break
  od;
  if
  :: !terminating ->
     ci_w = 0;
     do
     :: ci_w < N ->
        /* WORK-5: a task waits in `ready` only while no worker can take it */
        assert(nready == 0 || !CAN_TAKE(ci_w));
        /* WORK-5: while a worker is idle, every task another holds, but its oldest, has started */
        ci_n = 0;
        ci_i = 1;
        do
        :: ci_i < nheld[ci_w] -> ci_n = ci_n + (HN(ci_w, ci_i) > claimed[ci_w]); ci_i++
        :: else -> break
        od;
        assert(!ci_idle || ci_n == 0);
        /* SHUT-2: once closing, a worker that holds nothing has been sent its sentinel */
        assert(!closing || !IDLE(ci_w));
        ci_w++
     :: else -> break
     od
  :: else
  fi;
  ci_t = 0; ci_w = 0; ci_i = 0; ci_n = 0; ci_r = 0; ci_idle = false
}

/* Task t ends, in its job: with its outcome, WorkerLostError, TaskTimeoutError,
   PoolTerminatedError, or its job's JobCancelledError. */
inline settle(t) {
  assert(!settled[t]);  /* JOB-1: no task settles twice */
  settled[t] = true;
  nsettled++;
#if CANCEL
  if
  :: IS_A(t) ->
     a_left--;
     if
     :: a_left == 0 -> a_settled = true
     :: else
     fi
  :: else
  fi
#endif
}

/* The outcome or the error of task t reaches its job. A cancelled job settled at cancel(): what
   its running tasks bring afterwards is discarded (CANCEL-1), and nothing else may come late. */
inline finish(t) {
  if
  :: CANCELLED(t) -> assert(settled[t])  /* CANCEL-1: it ended at the cancel; first settle wins */
  :: else -> settle(t)
  fi
}

/* A task that fails settles its job at once (JOB-6: a map job fails as a whole). */
inline fail(t) {
#if CANCEL
  if
  :: IS_A(t) -> a_settled = true
  :: else
  fi;
#endif
  finish(t)
}

/* A dead worker's task fails with WorkerLostError. */
inline fail_lost(t) {
  assert(lost_here == 0);  /* LOST-3: a worker's death fails at most one task */
  lost_here++;
  fail(t)
}

/* A write to worker w's inbox pipe (ProcessWorker.send). */
inline write(w, m, t, n) {
  assert(nfull(inbox[w]));  /* the model's bound QUEUE */
  if
  :: m == TASK -> assert(!sentinel_written[w])  /* SHUT-1: no task reaches a worker after its sentinel */
  :: else -> sentinel_written[w] = true
  fi;
  inbox[w]!m, t, n
}

/* Roster._hold and _put: record that worker w holds task t (WORK-3), then queue it for writing. */
inline hold(w, t) {
  assert(CAN_TAKE(w) && t != 0);  /* WORK-3: at most DEPTH tasks */
  last_number[w]++;
  HT(w, nheld[w]) = t;
  HN(w, nheld[w]) = last_number[w];
  nheld[w]++;
#if WRITE_LATER
  assert(nfull(outq[w]));  /* the model's bound QUEUE */
  outq[w]!TASK, t, last_number[w]
#else
  write(w, TASK, t, last_number[w])
#endif
}

inline ready_pop(t) {
  t = ready[0];
  si = 1;
  do
  :: si < nready -> ready[si - 1] = ready[si]; si++
  :: else -> break
  od;
  nready--;
  ready[nready] = 0;
  si = 0
}

/* The worker of the set `smask` (bit w: slot w; not empty) that the roster picks: the first in
   the roster, as a dict iterates; with ANY_ORDER, any of them. */
inline choose(pick) {
#ifdef ANY_ORDER
  if
  :: (smask & 1) -> pick = 0
  :: (smask & 2) -> pick = 1
  :: (smask & 4) -> pick = 2
  :: (smask & 8) -> pick = 3
  fi;
#else
  pick = NONE;
  for (si : 0 .. N - 1) {
    if
    :: (smask & (1 << si)) && (pick == NONE || rank[si] < rank[pick]) -> pick = si
    :: else
    fi
  }
  si = 0;
#endif
  smask = 0
}

/* Roster._least_busy: a worker that can take a task and holds the fewest. */
inline least_busy(pick) {
  smin = DEPTH;
  smask = 0;
  for (si : 0 .. N - 1) {
    if
    :: CAN_TAKE(si) && nheld[si] < smin -> smin = nheld[si]; smask = 1 << si
    :: CAN_TAKE(si) && nheld[si] == smin -> smask = smask | (1 << si)
    :: else
    fi
  }
  if
  :: smask != 0 -> choose(pick)
  :: else -> pick = NONE
  fi;
  si = 0;
  smin = 0
}

/* Roster._fill: ready tasks, one at a time, each to the least busy worker that can take it. */
inline fill() {
  do
  :: nready > 0 ->
     least_busy(spick);
     if
     :: spick == NONE -> break
     :: else -> ready_pop(st); hold(spick, st); st = 0
     fi
  :: else -> break
  od;
  spick = 0
}

/* claims.take_back and Roster._take_back: under the claim lock, read `claimed` and revoke up to
   the last task sent; every task held above `claimed` goes to the front of `ready` (WORK-6). */
inline take_back(v) {
  sclaimed = claimed[v];
  if
  :: last_number[v] > revoked[v] -> revoked[v] = last_number[v]
  :: else
  fi;
  snback = 0;
  sk = 0;  /* tasks kept */
  sj = 0;
  do
  :: sj < nheld[v] ->
     if
     :: HN(v, sj) > sclaimed -> sback[snback] = HT(v, sj); snback++
     :: else -> HT(v, sk) = HT(v, sj); HN(v, sk) = HN(v, sj); sk++
     fi;
     sj++
  :: else -> break
  od;
  sj = sk;
  do
  :: sj < nheld[v] -> HT(v, sj) = 0; HN(v, sj) = 0; sj++
  :: else -> break
  od;
  nheld[v] = sk;
  if
  :: snback > 0 -> stalled[v] = (sk > 0)
  :: else  /* one that finds nothing leaves it as it was */
  fi;
  sj = nready;  /* ready.extendleft(reversed(back)) */
  do
  :: sj > 0 -> sj--; ready[sj + snback] = ready[sj]
  :: else -> break
  od;
  do
  :: sj < snback -> ready[sj] = sback[sj]; sback[sj] = 0; sj++
  :: else -> break
  od;
  nready = nready + snback;
  sj = 0; sk = 0; sclaimed = 0
}

/* Roster._rebalance for idle worker w: take back the unstarted tasks of the busiest worker that
   holds two or more (the next busiest if all its tasks had started), and hand them out.
   Sets sdone if it did. */
inline rebalance(w) {
  sdone = false;
#ifndef BUG_NO_TAKE_BACK
  sn = 0;  /* victims tried */
  do
  :: !sdone ->
     smin = 0;  /* the most tasks an untried victim holds */
     smask = 0;
     for (si : 0 .. N - 1) {
       if
       :: si != w && live[si] && !(sn & (1 << si)) && nheld[si] >= 2 && nheld[si] > smin ->
          smin = nheld[si]; smask = 1 << si
       :: si != w && live[si] && !(sn & (1 << si)) && nheld[si] >= 2 && nheld[si] == smin ->
          smask = smask | (1 << si)
       :: else
       fi
     }
     si = 0;
     smin = 0;
     if
     :: smask == 0 -> break
     :: else
     fi;
     choose(spick);
     sn = sn | (1 << spick);
     take_back(spick);
     spick = 0;
     if
     :: snback > 0 -> snback = 0; fill(); sdone = true
     :: else
     fi
  :: else -> break
  od;
  sn = 0
#endif
}

inline send_sentinel(w) {
  /* SHUT-1: closing (closed, every task offered), nothing ready, it holds nothing, and nothing
     could be taken back for it; SHUT-2: never two */
  assert(closed && closing && !terminating && prepared == submitted && nready == 0 && nheld[w] == 0);
  assert(!got_shutdown[w]);
  got_shutdown[w] = true;
#if defined(BUG_SENTINEL_OVERTAKES_TASK) || !WRITE_LATER
  write(w, SENTINEL, 0, 0)  /* with the bug: at once, past the tasks still queued for it */
#else
  assert(nfull(outq[w]));
  outq[w]!SENTINEL, 0, 0
#endif
}

/* Roster._serve: ready tasks; if it is idle and none is ready, tasks taken back from a busy worker;
   if there are none either and the pool is closing, its sentinel. */
inline serve(w) {
  if
  :: !GIVABLE(w)  /* seen exited, sent its sentinel, or killed */
  :: else ->
     do
     :: nready > 0 && CAN_TAKE(w) -> ready_pop(st); hold(w, st); st = 0
     :: else -> break
     od;
     if
     :: nheld[w] == 0 && nready == 0 ->
        rebalance(w);
        if
        :: !sdone && closing ->
#ifdef BUG_ONE_SENTINEL_TOO_FEW
           if
           :: skip_one_sentinel -> skip_one_sentinel = false
           :: else -> send_sentinel(w)
           fi
#else
           send_sentinel(w)
#endif
        :: else
        fi;
        sdone = false
     :: else
     fi
  fi
}

/* Roster.serve_all, first half: fill, then mark every worker to be served, by how many tasks it
   holds (sa_held = held + 1; 0: not served). */
inline mark_all() {
  if
  :: terminating
  :: else ->
     fill();
     for (sa_w : 0 .. N - 1) {
       sa_held[sa_w] = (live[sa_w] -> nheld[sa_w] + 1 : 0)
     }
     sa_w = 0
  fi
}

/* Serve the marked workers, least busy first (as they were when marked), ties in roster order. */
inline serve_marked() {
  do
  :: true ->
     smin = DEPTH + 2;
     smask = 0;
     for (si : 0 .. N - 1) {
       if
       :: sa_held[si] != 0 && sa_held[si] < smin -> smin = sa_held[si]; smask = 1 << si
       :: sa_held[si] != 0 && sa_held[si] == smin -> smask = smask | (1 << si)
       :: else
       fi
     }
     si = 0;
     smin = 0;
     if
     :: smask == 0 -> break
     :: else
     fi;
     choose(sa_w);
     sa_held[sa_w] = 0;
     serve(sa_w)
  od;
  sa_w = 0
}

/* Roster._release: worker w's outcome for task t has been read; it holds the task no more. */
inline release(w, t) {
  /* WORK-3, WORK-6: an outcome comes from the worker that holds the task, for its oldest (it runs
     them in order), which it has run */
  assert(live[w] && nheld[w] > 0 && HT(w, 0) == t && runs[t] == 1);
  sj = 1;
  do
  :: sj < nheld[w] -> HT(w, sj - 1) = HT(w, sj); HN(w, sj - 1) = HN(w, sj); sj++
  :: else -> break
  od;
  nheld[w]--;
  HT(w, nheld[w]) = 0;
  HN(w, nheld[w]) = 0;
  sj = 0;
  if
  :: nheld[w] == 0 -> stalled[w] = false
  :: else
  fi;
  finish(t)
}

/* Roster.offer, for one task: to the least busy worker that can take it if nothing is ready,
   else to the back of `ready`. */
inline offer(t) {
  assert(t == prepared + 1);  /* tasks go out in order */
  prepared++;
  if
  :: CANCELLED(t)  /* CANCEL-1: the task handler checks under cond; the task ended at the cancel */
  :: else ->
     if
     :: nready == 0 -> least_busy(spick)
     :: else -> spick = NONE
     fi;
     if
     :: spick != NONE -> hold(spick, t)  /* WORK-3: recorded before it is written */
     :: else -> ready[nready] = t; nready++
     fi;
     spick = 0
  fi
}

/* Roster.exited, the outcomes drained from the worker's pipe settled, then Roster.reap. */
inline reap(w) {
  exited[w] = true;  /* what it sent is read from now on without serving it */
  do  /* LOST-1: every outcome the worker sent is read before its task fails */
  :: outbox[w]?st -> release(w, st); st = 0
  :: empty(outbox[w]) -> break
  od;
  assert(live[w] && empty(outbox[w]));
  if
  :: nheld[w] > 0 ->
     /* LOST-1, LOST-3: it runs its tasks in order, so it started none behind its oldest */
     assert(claimed[w] <= HN(w, 0));
#if TIMEOUTS
     /* TIME-2: a worker killed at its task's expiry holds that task only: the ones behind it
        were taken back at the expiry, and it is given no more. Only that task fails, with
        TaskTimeoutError; it started (its clock began at its claim, TIME-1) and never runs again. */
     assert(w != timed_worker || nheld[w] == 1 && HT(w, 0) == timed_task);
     assert(w != timed_worker || runs[timed_task] == 1);
#endif
#if defined(BUG_FAIL_ALL_ON_CRASH)
     for (sj : 0 .. DEPTH - 1) {
       if
       :: sj < nheld[w] -> fail_lost(HT(w, sj))
       :: else
       fi
     }
#else
#ifndef BUG_DROP_TASK_ON_CRASH
     /* LOST-1: the oldest, the only one it may have been running, fails (WorkerLostError; for
        a worker killed at that task's expiry, TaskTimeoutError: TIME-2) */
     fail_lost(HT(w, 0));
#endif
     /* LOST-3: the ones behind it go to the front of `ready`, for other workers */
     snback = nheld[w] - 1;
     sj = nready;
     do
     :: sj > 0 -> sj--; ready[sj + snback] = ready[sj]
     :: else -> break
     od;
     do
     :: sj < snback -> ready[sj] = HT(w, sj + 1); sj++
     :: else -> break
     od;
     nready = nready + snback;
     snback = 0;
#endif
     for (sj : 0 .. DEPTH - 1) {
       HT(w, sj) = 0;
       HN(w, sj) = 0
     }
     nheld[w] = 0;
     sj = 0;
     lost_here = 0
  :: else
  fi;
#if TIMEOUTS
  if
  :: w == timed_worker -> timed_worker = NONE; timed_task = 0
  :: else
  fi;
#endif
#if WRITE_LATER
  do  /* what was queued for it is written to its dead pipe, and lost */
  :: outq[w]?_, _, _
  :: empty(outq[w]) -> break
  od;
#endif
  do
  :: inbox[w]?_, _, _
  :: empty(inbox[w]) -> break
  od;
  live[w] = false;
  nlive--;
  for (sj : 0 .. N - 1) {
    if
    :: live[sj] && rank[sj] > rank[w] -> rank[sj]--
    :: else
    fi
  }
  sj = 0;
  rank[w] = 0;
  stalled[w] = false;
  got_shutdown[w] = false;
  exited[w] = false;
  sentinel_written[w] = false;
  worker_requests!CHANGED  /* WorkerHandler.worker_reaped */
}

#if CANCEL
/* cancel() on job A (CANCEL-1), under roster.cond: the job settles at once; its tasks waiting in
   `ready` are dropped; every worker that holds a task of it has all it has not claimed taken
   back; the taken-back tasks of job A are dropped, those of job B go to the front of `ready`,
   to be handed out again by serve_all (CANCEL-3). A victim left holding its running task is
   stalled, as after any take-back. Its running tasks run to their end (their outcomes are
   discarded: finish). Job A's tasks still in the task queue are dropped when offered (offer). */
inline cancel_job() {
  assert(!cancelled && !a_settled);  /* CANCEL-1: cancel() is True only for a job not settled */
  cancelled = true;
  for (sc_i : 1 .. CANCEL) {  /* JobCancelledError, once: the job settles here and only here */
    if
    :: !settled[sc_i] -> settle(sc_i)
    :: else
    fi
  }
  assert(a_settled);
#ifndef BUG_CANCEL_LEAVES_INBOX
  for (sc_v : 0 .. N - 1) {
    sc_n = false;  /* it holds a task of job A */
    for (sc_i : 0 .. DEPTH - 1) {
      sc_n = sc_n || (sc_i < nheld[sc_v] && IS_A(HT(sc_v, sc_i)))
    }
    if
    :: live[sc_v] && sc_n ->
       take_back(sc_v);
#ifdef BUG_CANCEL_DROPS_OTHERS
       /* every task taken back is dropped, job B's included */
       sj = 0;
       do
       :: sj + snback < nready -> ready[sj] = ready[sj + snback]; sj++
       :: else -> break
       od;
       do
       :: sj < nready -> ready[sj] = 0; sj++
       :: else -> break
       od;
       nready = nready - snback;
       sj = 0;
#endif
       snback = 0
    :: else
    fi
  }
#endif
  sc_n = 0;  /* tasks kept */
  for (sc_i : 0 .. T - 1) {  /* job A's tasks leave `ready`, job B's keep their order */
    if
    :: sc_i < nready && !IS_A(ready[sc_i]) -> ready[sc_n] = ready[sc_i]; sc_n++
    :: else
    fi
  }
  for (sc_i : 0 .. T - 1) {
    if
    :: sc_i >= sc_n -> ready[sc_i] = 0
    :: else
    fi
  }
  nready = sc_n;
  sc_v = 0; sc_i = 0; sc_n = 0
}
#endif

#if TIMEOUTS
/* The timekeeper, under roster.cond, when the time of task t that worker w claimed is up
   (TIME-2): it takes back all w has not claimed (to the front of `ready`, for serve_all), and
   if w is still on t (claimed is t's number: running it, or done but not yet at its next task)
   it kills w. If w had finished t and claimed a later task, t keeps its outcome and w runs on. */
inline expire(w, t) {
  sc_n = NONE;  /* t's number in w */
  for (sc_i : 0 .. DEPTH - 1) {
    if
    :: sc_i < nheld[w] && HT(w, sc_i) == t -> sc_n = HN(w, sc_i)
    :: else
    fi
  }
  /* TIME-1: its clock runs from its claim until its outcome is read */
  assert(live[w] && !killed[w] && sc_n != NONE && sc_n <= claimed[w] && runs[t] == 1);
  take_back(w);
  snback = 0;
  if
  :: claimed[w] == sc_n ->
     assert(HT(w, nheld[w] - 1) == t);  /* every task behind it was taken back */
#ifdef BUG_TIMEOUT_REQUEUES_RUNNING
     /* t goes back to the front of `ready` too, as if it had not started */
     nheld[w]--;
     HT(w, nheld[w]) = 0;
     HN(w, nheld[w]) = 0;
     sj = nready;
     do
     :: sj > 0 -> ready[sj] = ready[sj - 1]; sj--
     :: else -> break
     od;
     ready[0] = t;
     nready++;
#endif
     killed[w] = true;  /* SIGKILL: it runs nothing more; an outcome it wrote is still read */
     timed_worker = w;
     timed_task = t
  :: else
  fi;
  sc_i = 0; sc_n = 0
}
#endif

/* Every step under roster.cond. A handler hands it the request by rendezvous, from inside its
   own atomic step, and the whole roster step runs without interruption. */
proctype Roster() {
  byte op;
end:
  do
  :: atomic {
       roster_call?op ->
       ROSTER_STEP {
         if
         :: op == OFFER -> offer(rt)
         :: op == BEGIN_CLOSING ->
            /* SHUT-1: closing only after close() and the last task */
            assert(closed && prepared == submitted);
            closing = true;
#ifdef BUG_ONE_SENTINEL_TOO_FEW
            skip_one_sentinel = true;
#endif
            mark_all()
         :: op == SETTLE ->
            release(rw, rt);
#ifndef BUG_NO_HANDOUT_ON_OUTCOME
            sa_held[rw] = 1  /* the worker, now with room, is served (WORK-5) */
#endif
         :: op == REAP -> reap(rw); mark_all()  /* what it had not started, to others */
         :: op == SERVE_ALL -> mark_all()
#if CANCEL
         :: op == CANCEL_JOB -> cancel_job(); mark_all()  /* job B's tasks taken back, to others */
#endif
#if TIMEOUTS
         :: op == EXPIRE -> expire(rw, rt); mark_all()  /* the tasks taken back, to others */
#endif
         fi;
         serve_marked();
#ifdef BUG_ONE_SENTINEL_TOO_FEW
         skip_one_sentinel = false;
#endif
         check_invariants();
         op = 0; rw = 0; rt = 0
       }
     }
  od
}

#if WRITE_LATER
/* Handout.send, from whichever thread holds worker w's `writing` lock: all that is queued, in order. */
inline write_outgoing(w) {
  do
  :: outq[w]?TASK, st, sn -> write(w, TASK, st, sn)
  :: outq[w]?SENTINEL, st, sn -> write(w, SENTINEL, 0, 0)
  :: empty(outq[w]) -> break
  od;
  st = 0; sn = 0
}

proctype Writer() {
end:
  do
  :: d_step { nempty(outq[0]) -> write_outgoing(0) }
#if N > 1
  :: d_step { nempty(outq[1]) -> write_outgoing(1) }
#endif
#if N > 2
  :: d_step { nempty(outq[2]) -> write_outgoing(2) }
#endif
#if N > 3
  :: d_step { nempty(outq[3]) -> write_outgoing(3) }
#endif
  od
}
#endif

inline wake_result_handler() {
  atomic { if :: nfull(wake) -> wake!1 :: full(wake) -> skip fi }  /* a non-blocking write */
}

/* The worker claims and starts task t, numbered n. */
inline start(w, t, n) {
  claimed[w] = n;
  assert(runs[t] == 0);  /* WORK-6, JOB-1: no task starts twice */
  assert(!CANCELLED(t));  /* CANCEL-1: no task of a cancelled job starts after the cancel */
  runs[t]++;
#ifndef START_UNCHECKED
  /* WORK-6, WORK-3: a worker starts only a task the roster records it holds: never one taken
     back from it */
  held_at_start = false;
  for (si : 0 .. DEPTH - 1) {
    held_at_start = held_at_start || (si < nheld[w] && HT(w, si) == t && HN(w, si) == n)
  }
  assert(held_at_start);
  held_at_start = false;
  si = 0
#endif
}

/* worker.worker_loop, with its claim (claims.py). Once the pool is terminating the parent heeds
   nothing a worker does, so here it only takes a sentinel already sent or is killed; once it is
   killed (by terminate, or at its task's expiry) it claims, sends and crashes no more. */
proctype Worker(byte w) {
  byte t, n;
#ifdef BUG_CLAIM_WITHOUT_LOCK
  byte seen;
#endif
  do
  :: inbox[w]?SENTINEL, t, n ->
     assert(closed && prepared == submitted);  /* SHUT-1: no sentinel before close and the last task */
     break
#ifdef BUG_CLAIM_WITHOUT_LOCK
  :: atomic {
       !terminating && !killed[w] && inbox[w]?[TASK, t, n] ->
       inbox[w]?TASK, t, n;
       seen = revoked[w]  /* reads `revoked` ... */
     };
     atomic {  /* ... and writes `claimed` in another step: a take-back can come between */
       if
       :: n <= seen -> t = 0; n = 0  /* taken back: skipped */
       :: else -> start(w, t, n)
       fi;
       seen = 0
     };
#else
  :: atomic {
       !terminating && !killed[w] && inbox[w]?[TASK, t, n] ->
       inbox[w]?TASK, t, n;  /* claims.claim, under the claim lock */
#ifndef BUG_TAKE_BACK_WITHOUT_SKIP
       if
       :: n <= revoked[w] -> t = 0; n = 0  /* taken back: skipped, it runs elsewhere (WORK-6) */
       :: else -> start(w, t, n)
       fi
#else
       start(w, t, n)
#endif
     };
#endif
     if
     :: t != 0 ->  /* running t */
        if
        :: atomic {  /* finishes it, sends its outcome */
             !terminating && !killed[w] -> outbox[w]!t; t = 0; n = 0
           }
        :: atomic { !terminating && !killed[w] && crashes < CRASHES -> crashes++ };
           break  /* dies running it */
        :: killed[w] -> break
        fi
     :: else
     fi
  :: atomic { !terminating && !killed[w] && crashes < CRASHES -> crashes++ };
     break  /* dies between tasks */
  :: killed[w] -> break
  od;
  atomic { nrunning--; t = 0; n = 0; exits!w }  /* exited: its exit descriptor is ready */
}

/* WorkerHandler.maintain's start of one worker into slot w, under roster.cond (atomic). */
inline start_worker(w) {
  assert(!terminating);  /* WORK-2: no worker starts after terminate */
  assert(nlive < N);     /* WORK-1 */
  live[w] = true;
  rank[w] = nlive;  /* it joins the end of the roster */
  nlive++;
  last_number[w] = 0;
  claimed[w] = 0;
  revoked[w] = 0;
  killed[w] = false;
  nrunning++;
  run Worker(w)
}

proctype WorkerHandler() {
  byte w, k;
  do
  :: worker_requests?STOP -> break
  :: atomic {
       worker_requests?CHANGED ->  /* maintain(), under roster.cond */
       k = MISSING;
       /* WORK-2: once closing, no more workers than tasks that wait for one */
       assert(!closing || k <= nready);
       for (w : 0 .. N - 1) {
         if
         :: !live[w] && k > 0 -> start_worker(w); k--
         :: else
         fi
       }
       /* WORK-1: while the pool may grow, it is back to exactly N workers */
       assert(closing || terminating || nlive == N);
       w = 0;
       k = 0;
       roster_call!SERVE_ALL  /* ready tasks, or tasks taken back, for the new workers */
     };
     wake_result_handler()  /* it must watch the new workers */
  od;
  worker_handler_done = true
}

proctype TaskHandler() {
  byte item;
  do
  :: taskq?item ->
     if
     :: item == TERMINATED_MARK || terminating -> goto stop
     :: item == CLOSED_MARK -> goto shutdown
     :: else
     fi;
     atomic {  /* wait_for_room, then Roster.offer */
       (terminating || nready < READY_LIMIT) ->
       if
       :: terminating -> goto stop
       :: else
       fi;
       rt = item;
       item = 0;
       roster_call!OFFER
     }
  od;
shutdown:
  atomic {
    if
    :: terminating -> goto stop  /* terminate() stops every worker itself */
    :: else
    fi;
    roster_call!BEGIN_CLOSING  /* every task has been offered: idle workers get sentinels */
  };
  wake_result_handler();  /* it may have no worker left to wait for */
stop:
  task_handler_done = true
}

proctype ResultHandler() {
  byte w, t;
  do
  :: FINISHED -> break
  :: else ->
     if  /* transport.wait(): an outcome, a worker exited, or a wake */
     :: wake?_
     :: atomic {
          if
          :: outbox[0]?t -> w = 0
#if N > 1
          :: outbox[1]?t -> w = 1
#endif
#if N > 2
          :: outbox[2]?t -> w = 2
#endif
#if N > 3
          :: outbox[3]?t -> w = 3
#endif
          fi;
          if
          :: terminating -> goto stop  /* terminate() fails what is left */
          :: else
          fi;
          rw = w; rt = t; w = 0; t = 0;
          roster_call!SETTLE
        }
     :: atomic {
          exits?w ->
          if
          :: terminating -> goto stop
          :: else
          fi;
          rw = w; w = 0;
          roster_call!REAP
        }
     fi
  od;
  worker_requests!STOP;  /* nothing more can happen: the worker handler stops */
stop:
  result_handler_done = true
}

#if TERMINATE
/* terminate() from another thread (core.terminate and _stop_everything). */
proctype Terminator() {
  byte w, t;
  if
  :: skip -> goto done  /* never called */
  :: atomic {  /* under the lifecycle lock: the state, then roster.terminate() (WORK-2) */
       state != S_TERMINATE ->
       state = S_TERMINATE;
       terminate_started = true;
       terminating = true  /* no worker starts, no task goes out */
     }
  fi;
  taskq!TERMINATED_MARK;
  worker_requests!STOP;
  worker_handler_done;            /* join the worker handler: no worker starts behind our back */
  atomic {
    for (w : 0 .. N - 1) {
      if
      :: live[w] -> killed[w] = true
      :: else
      fi
    }
  }
  wake_result_handler();
  task_handler_done && result_handler_done;
  atomic {  /* cache.abandon_all: PoolTerminatedError (SHUT-5) */
    for (t : 1 .. submitted) {
      if
      :: !settled[t] -> settle(t)
      :: else
      fi
    }
  }
  nrunning == 0;  /* process workers are joined */
  terminate_done = true;
done:
  skip
}
#endif

#if CANCEL
/* cancel() on job A's result, from the caller or another thread, at any moment while the job has
   not settled (a cancel() that returns False changes nothing, so it is not modelled). */
proctype Canceller() {
end:
  atomic { submitted == T && !a_settled -> roster_call!CANCEL_JOB }
}
#endif

#if TIMEOUTS
/* The timekeeper: the time of any task that worker w has claimed and whose outcome has not been
   read may be up at any moment (the limit is per task, TIME-1), at most TIMEOUTS times a run. */
#define EXPIRABLE(w, i) (live[w] && !killed[w] && (i) < nheld[w] && HN(w, i) <= claimed[w])
#define EXPIRE_AT(w, i) \
  :: atomic { timeouts < TIMEOUTS && EXPIRABLE(w, i) -> \
              timeouts++; rw = w; rt = HT(w, i); roster_call!EXPIRE }
#if DEPTH == 2
#define EXPIRE_IN(w) EXPIRE_AT(w, 0) EXPIRE_AT(w, 1)
#elif DEPTH == 3
#define EXPIRE_IN(w) EXPIRE_AT(w, 0) EXPIRE_AT(w, 1) EXPIRE_AT(w, 2)
#else
#define EXPIRE_IN(w) EXPIRE_AT(w, 0) EXPIRE_AT(w, 1) EXPIRE_AT(w, 2) EXPIRE_AT(w, 3)
#endif
proctype Timekeeper() {
end:
  do
  EXPIRE_IN(0)
#if N > 1
  EXPIRE_IN(1)
#endif
#if N > 2
  EXPIRE_IN(2)
#endif
#if N > 3
  EXPIRE_IN(3)
#endif
  od
}
#endif

#if BUFFER
/* imap's feed, in the caller's thread: draw the next input item and submit it as a task. */
inline draw() {
  submitted++;
  /* BUF-1: at most BUFFER tasks drawn whose results the caller has not taken */
  assert(submitted - taken <= BUFFER);
  taskq!submitted
}
#endif

/* PoolCore.start, then the caller: submit the tasks, close(), join(). */
init {
  byte w;
  bool saw_terminate;
  atomic {
    for (w : 0 .. N - 1) {  /* the first workers start before any handler thread */
      start_worker(w)
    }
    w = 0;
    run Roster();
#if WRITE_LATER
    run Writer();
#endif
    run TaskHandler();
    run ResultHandler();
    run WorkerHandler();
#if TERMINATE
    run Terminator();
#endif
#if CANCEL
    run Canceller();
#endif
#if TIMEOUTS
    run Timekeeper();
#endif
  }
#if BUFFER
  /* imap(f, range(T), buffersize=BUFFER), consumed to its end (BUF-1): BUFFER tasks drawn at
     the call, then one each time the caller takes a result, after taking it */
  atomic {
    assert(state == S_RUN);
    do
    :: submitted < T && submitted < BUFFER -> draw()
    :: else -> break
    od
  };
  do
  :: taken < T ->
#ifdef BUG_REFILL_BEFORE_TAKE
     /* next() draws first, counting as free the slot of the result it is about to take */
     atomic {
       if
       :: submitted < T && submitted - (taken + 1) < BUFFER -> draw()
       :: else
       fi
     };
     atomic { settled[taken + 1] -> taken++ }
#else
     /* next(): the next result, in order (an error in a task's place too), then the refill. The
        take and the draw are one step: nothing but the caller reads `taken`. */
     atomic {
       settled[taken + 1] ->
       taken++;
       if
       :: submitted < T && submitted - taken < BUFFER -> draw()
       :: else
       fi
     }
#endif
  :: else -> break
  od;
#else
  /* map_async(f, range(T)): one job of T tasks, refused unless in RUN (LIFE-3); with CANCEL, two
     jobs in one step: map_async of tasks 1..CANCEL (job A), then of the rest (job B) */
  atomic {
    if
    :: state == S_RUN ->
       do
       :: submitted < T -> submitted++; taskq!submitted
       :: else -> break
       od
    :: else
    fi
  };
#endif
  atomic {  /* close() */
    if
    :: state == S_RUN -> state = S_CLOSE; closed = true; taskq!CLOSED_MARK
    :: else
    fi
  }
  /* join(): core.join. It waits for a terminate() that was under way when it began... */
  atomic { saw_terminate = (state == S_TERMINATE) };
  if
  :: saw_terminate -> terminate_done
  :: else
  fi;
  task_handler_done && result_handler_done && worker_handler_done;  /* SHUT-4 */
  nrunning == 0;                                                     /* SHUT-3 */
#ifndef JOIN_MISSES_LATE_TERMINATE
  /* ...and for one that began meanwhile (SHUT-4). A join that looks at the state only as it
     begins is JOIN_MISSES_LATE_TERMINATE, and SPIN finds JOB-1 broken. */
  if
  :: terminate_started -> terminate_done
  :: else
  fi;
#endif
  d_step {
    /* JOB-1: once joined, every task has settled (exactly once: settle) */
    assert(nsettled == submitted);
    /* WORK-6, LOST-3, CANCEL-3, TIME-2: every task of a job not cancelled ran, exactly once
       (none starts twice), but one per crash at most: only a worker's own death fails a task
       that never started (LOST-1), never a take-back, a cancel or a timeout */
    sc_n = 0;
    for (sc_i : 1 .. T) {
      sc_n = sc_n + (runs[sc_i] == 0 && !CANCELLED(sc_i))
    }
    assert(terminate_started || sc_n <= crashes);
    sc_i = 0; sc_n = 0;
    joined = true
  }
}

/* SHUT-3, SHUT-4, JOB-1: every run ends with join() returned and every task settled. */
ltl done { <> (joined && nsettled == submitted) }
