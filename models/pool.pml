/* pool.pml: refpool's shutdown and worker-loss protocol, for SPIN (spec clauses WORK, SHUT, JOB).

Theory of operation. The processes below are refpool's parts (refpool/core.py):

    Caller --taskq--> TaskHandler --inbox[w]--> Worker(w) --outbox[w]--> ResultHandler
                      (offers each task: to a free                       (settles outcomes, and hands
                       worker, held[w] = task,                            the freed worker the next
                       recorded BEFORE the send;                          ready task; on `gone`,
                       else into `ready`)                                 drains the outbox, fails
                                                                          the held task, tells the
                                                                          WorkerHandler)
    WorkerHandler: on CHANGED starts workers into free slots while the pool may grow, handing each
    a ready task; ends on STOP.
    Whoever assigns a task writes it, in a later step, holding the worker's `writing` lock, taken
    when it assigned; a sentinel waits for that lock, so it never overtakes a task (SHUT-1).
    Terminator (TERMINATE=1): terminate() from another thread, at any moment or never.

The roster (refpool/roster.py) is the globals live[], held[], nlive, shutdown_begun and
terminating; a step under `roster.cond` is an atomic block. A worker holds at most one task
(core.TASKS_IN_FLIGHT = 1). maxtasksperchild is not modelled.

Abstractions, on purpose:
- Worker slots are reused, so the state space stays bounded. A slot is free again only once
  the result handler has removed its worker, i.e. after the worker exited. A task sent after
  its worker was removed (and maybe replaced) goes to the dead worker's pipe and is lost
  (refpool suppresses the OSError): the send checks that the slot still holds the task, which
  is true exactly while the worker it was assigned to has not been removed.
- Steps that touch only a handler's own data (reading a pipe, then settling under the roster
  lock) are merged into one atomic step; locals are reset after use, to merge states.
- The result handler watches every slot's outbox; in refpool it watches the handles it read
  from the roster and the worker handler wakes it after a start. The wake after the
  sentinels (core._after_shutdown) and after terminate's kill is modelled (channel `wake`).
- A worker takes a task and sends its outcome in one step: while it runs, only the worker
  knows it has the task, so dying while running it is the same, to the parent, as dying
  with the task still in its inbox (an initializer that raises is a death while idle).
  terminate's kill can end a worker at any point (a thread only after its task; both fit).

Macros: N workers (1..4), T tasks, CRASHES (bound on worker crashes), TERMINATE (0/1).
Seeded bugs: BUG_ONE_SENTINEL_TOO_FEW, BUG_START_AFTER_CLOSE, BUG_DROP_TASK_ON_CRASH,
BUG_SENTINEL_OVERTAKES_TASK (the sentinel does not wait for the worker's `writing` lock),
BUG_NO_HANDOUT_ON_OUTCOME (a freed worker is not handed the ready task); and
JOIN_MISSES_LATE_TERMINATE, the join of refpool's core.py (with TERMINATE=1).
Run with models/spin_check.py; tests/models/test_spin.py checks every configuration.
*/

#ifndef N
#define N 2
#endif
#ifndef T
#define T 3
#endif
#ifndef CRASHES
#define CRASHES 1
#endif
#ifndef TERMINATE
#define TERMINATE 0
#endif
#if N < 1 || N > 4
#error "pool.pml models 1 to 4 workers"
#endif

mtype = { TASK, SENTINEL, CHANGED, STOP };

/* Lifecycle states (refpool/lifecycle.py); changed only under the lifecycle lock (atomic). */
#define S_RUN 1
#define S_CLOSE 2
#define S_TERMINATE 3
/* The marks on the task queue after the tasks 1..T (task_handler.CLOSED, TERMINATED). */
#define CLOSED_MARK 254
#define TERMINATED_MARK 255

byte state = S_RUN;
bool closed;                 /* close() was called (the state may be TERMINATE since) */
byte submitted;              /* tasks 1..submitted were accepted */
byte prepared;               /* tasks 1..prepared were offered; handed+1..prepared wait in `ready` */
byte handed;                 /* tasks 1..handed were assigned to a worker, in order */
bool settled[T + 1];         /* settled[t]: task t has its outcome or its error */
byte nsettled;

/* The roster. */
bool live[N];                /* slot w holds a worker that the result handler has not removed */
byte nlive;
byte held[N];                /* the task worker w holds, 0 for none */
bool shutdown_begun;         /* the sentinels are being sent: no worker starts again */
bool terminating;
byte writing[N];             /* the task being written to worker w, holding its `writing` lock; 0: none */
bool sentinel_written[N];    /* the sentinel is in worker w's inbox */
byte sentinels[N];           /* sentinels sent to the worker in slot w */
byte sentinels_sent;
byte live_at_shutdown;

byte nrunning;               /* worker processes that have not exited */
bool killed[N];              /* terminate() killed the worker in slot w */
byte crashes;

bool task_handler_done, result_handler_done, worker_handler_done;
bool terminate_started, terminate_done;
bool joined;                 /* join() has returned */

chan taskq = [T + 2] of { byte };               /* tasks, then CLOSED_MARK and/or TERMINATED_MARK */
chan inbox[N] = [2] of { mtype, byte };         /* parent -> worker: TASK(t) or SENTINEL */
chan outbox[N] = [1] of { byte };               /* worker -> parent: the outcome of task t */
chan gone = [N] of { byte };                    /* worker w exited (its process sentinel) */
chan wake = [1] of { bit };                     /* the result handler's self-pipe */
chan worker_requests = [N + CRASHES + 2] of { mtype };  /* CHANGED (worker gone) or STOP */

hidden byte ci_t, ci_w, ci_n;  /* scratch for check_invariants (not part of the state) */

#define FREE(w) (live[w] && held[w] == 0)
#define READY_LIMIT N        /* Roster.ready_limit, imap's; apply and map may prepare more, no step changes */
#define NONE 255
#ifdef BUG_START_AFTER_CLOSE
#define MAY_GROW (!terminating)
#else
#define MAY_GROW (!shutdown_begun && !terminating)  /* Roster.missing() */
#endif
#define FINISHED (terminating || (shutdown_begun && nlive == 0))  /* Roster.finished() */

/* The roster's invariants, asserted after every step that changes it. */
inline check_invariants() {
  d_step {
    assert(nlive <= N && nrunning <= N);  /* WORK-1: never more than N live workers */
    ci_t = 1;
    do
    :: ci_t <= T ->
       ci_n = 0;
       ci_w = 0;
       do
       :: ci_w < N -> ci_n = ci_n + (held[ci_w] == ci_t); ci_w++
       :: else -> break
       od;
       /* WORK-3: a task is held by at most one worker, and a handed-out unsettled task by exactly one */
       assert(ci_n <= 1);
       assert(ci_t > handed || settled[ci_t] || ci_n == 1);
       ci_t++
    :: else -> break
    od;
    ci_w = 0;
    do
    :: ci_w < N ->
       assert(prepared == handed || !FREE(ci_w));  /* WORK-5: a task waits only while no worker is free */
       ci_w++
    :: else -> break
    od;
    ci_t = 0; ci_w = 0; ci_n = 0
  }
}

inline settle(t) {
  assert(!settled[t]);  /* JOB-1: no task settles twice */
  settled[t] = true;
  nsettled++
}

/* Roster._assign: the next ready task is recorded as held by w, and w's writing lock taken. */
inline assign(w) {
  assert(FREE(w) && writing[w] == 0 && handed < prepared);
  handed++;
  held[w] = handed;
  writing[w] = handed
}

/* Handout.send, outside the roster lock: lost if its worker has been removed meanwhile. */
inline send_task(w, t) {
  atomic {
    if
    :: held[w] == t ->
       assert(!sentinel_written[w]);  /* SHUT-1: no task is written after the worker's sentinel */
       inbox[w]!TASK, t
    :: else
    fi;
    if
    :: writing[w] == t -> writing[w] = 0  /* release; a replacement in the slot has its own lock */
    :: else
    fi
  }
}

inline wake_result_handler() {
  atomic { if :: nfull(wake) -> wake!1 :: full(wake) -> skip fi }  /* a non-blocking write */
}

proctype Worker(byte w) {
  byte t;
  do
  :: atomic { inbox[w]?TASK, t -> outbox[w]!t; t = 0 }  /* runs task t and sends its outcome */
  :: inbox[w]?SENTINEL, t ->
     assert(closed && handed == submitted);  /* SHUT-1: no sentinel before close and the last task */
     break
  :: atomic { crashes < CRASHES -> crashes++ }; break  /* dies idle or running a task */
  :: killed[w] -> break
  od;
  atomic { nrunning--; t = 0; gone!w }  /* exited: its process sentinel is ready */
}

/* WorkerHandler.maintain's body for one slot; the caller holds roster.cond (atomic). */
inline start_worker(w) {
  assert(!shutdown_begun && !terminating);  /* WORK-2: no worker starts after the sentinels or terminate */
  assert(nlive < N);                        /* WORK-1 */
  do  /* a fresh pipe: what was sent to the dead worker is gone with it */
  :: inbox[w]?_, _
  :: empty(inbox[w]) -> break
  od;
  live[w] = true;
  nlive++;
  held[w] = 0;
  writing[w] = 0;
  sentinel_written[w] = false;
  sentinels[w] = 0;
  killed[w] = false;
  nrunning++;
  run Worker(w)
}

proctype WorkerHandler() {
  byte w;
  byte pending[N];  /* the ready task handed to the worker started in slot w, to write */
  do
  :: worker_requests?STOP -> break
  :: atomic {
       worker_requests?CHANGED ->  /* maintain(), under roster.cond */
       for (w : 0 .. N - 1) {
         if
         :: !live[w] && MAY_GROW ->
            start_worker(w);
            if  /* Roster.add hands the new worker a ready task */
            :: prepared > handed -> assign(w); pending[w] = handed
            :: else
            fi
         :: else
         fi
       }
       check_invariants();
       w = 0
     };
     for (w : 0 .. N - 1) {  /* after leaving roster.cond */
       if
       :: pending[w] != 0 -> send_task(w, pending[w]); pending[w] = 0
       :: else
       fi
     };
     w = 0
  od;
  worker_handler_done = true
}

proctype TaskHandler() {
  byte item, w;
  bool need[N];
  do
  :: taskq?item ->
     if
     :: item == TERMINATED_MARK || terminating -> goto stop
     :: item == CLOSED_MARK -> goto shutdown
     :: else
     fi;
     /* Roster.offer: to a free worker if no task is waiting, else into `ready`, which it
        waits for room in; the result handler and the worker handler take tasks from there. */
     atomic {
       (terminating || prepared - handed < READY_LIMIT) ->
       if
       :: terminating -> goto stop
       :: else
       fi;
       assert(item == prepared + 1);  /* tasks go out in order */
       prepared++;
       w = NONE;
       if
       :: prepared == handed + 1 && FREE(0) -> w = 0
#if N > 1
       :: prepared == handed + 1 && FREE(1) -> w = 1
#endif
#if N > 2
       :: prepared == handed + 1 && FREE(2) -> w = 2
#endif
#if N > 3
       :: prepared == handed + 1 && FREE(3) -> w = 3
#endif
       :: else  /* every worker is busy: the task waits in `ready` */
       fi;
       if
       :: w != NONE -> assign(w)  /* WORK-3: recorded before it is sent */
       :: else
       fi;
       check_invariants()
     };
     if
     :: w != NONE -> send_task(w, item)
     :: else
     fi;
     item = 0;
     w = 0
  od;
shutdown:
  atomic {  /* Roster.begin_shutdown, once `ready` is empty */
    (prepared == handed || terminating) ->
    if
    :: terminating -> goto stop  /* it sends no sentinel; terminate() stops the rest */
    :: else
    fi;
    assert(closed && handed == submitted);  /* SHUT-1: only after close and the last task */
    shutdown_begun = true;
    live_at_shutdown = nlive;
    for (w : 0 .. N - 1) {
      need[w] = live[w]
    }
#ifdef BUG_ONE_SENTINEL_TOO_FEW
    w = N;
    do
    :: w > 0 -> w--; if :: need[w] -> need[w] = false; break :: else fi
    :: else -> break
    od;
#endif
    for (w : 0 .. N - 1) {
      if
      :: need[w] ->
         assert(sentinels[w] == 0);  /* SHUT-2: no worker gets two sentinels */
         sentinels[w]++;
         sentinels_sent++
      :: else
      fi
    }
    assert(sentinels_sent == live_at_shutdown)  /* SHUT-2: one sentinel for each live worker */
  }
  for (w : 0 .. N - 1) {
    if
    :: need[w] ->  /* to a dead worker: lost, or drained at a restart */
       atomic {
#ifndef BUG_SENTINEL_OVERTAKES_TASK
         writing[w] == 0 ->  /* with record.writing: after a task being written to it */
#endif
         inbox[w]!SENTINEL, 0;
         sentinel_written[w] = true
       }
    :: else
    fi
  }
  worker_requests!STOP;  /* core._after_shutdown */
  wake_result_handler();
stop:
  task_handler_done = true
}

/* One outcome from worker w, read and settled in one step (Roster.settle, then the job).
   With `hand`, the freed worker is handed the next ready task, to write in a later step; an
   outcome drained from an exited worker's pipe frees no worker (ResultHandler marks it first). */
inline on_outcome(w, t, hand) {
  if
  :: terminating  /* terminate() fails what is left */
  :: else ->
     assert(live[w] && held[w] == t);  /* WORK-3: an outcome comes from the worker that holds it */
     held[w] = 0;
     settle(t);
     if
     :: hand ->
#ifndef BUG_NO_HANDOUT_ON_OUTCOME
        if
        :: prepared > handed -> assign(w); sw = w; st = handed
        :: else
        fi;
#endif
        check_invariants()
     :: else
     fi
  fi;
  t = 0
}

#define READ_OUTCOME(slot) :: atomic { outbox[slot]?t -> on_outcome(slot, t, true) }

proctype ResultHandler() {
  byte w, t;
  byte sw, st;  /* a task handed to worker sw on its outcome, still to write */
  do
  :: FINISHED -> break
  :: else ->
     if  /* transport.wait(): an outcome, a worker gone, or a wake */
     :: wake?_
     READ_OUTCOME(0)
#if N > 1
     READ_OUTCOME(1)
#endif
#if N > 2
     READ_OUTCOME(2)
#endif
#if N > 3
     READ_OUTCOME(3)
#endif
     :: atomic {
          gone?w ->
          if
          :: terminating -> goto stop  /* terminate() fails what is left */
          :: else
          fi;
          /* LOST-1: every outcome the worker sent is read before its task fails */
          if
          :: outbox[w]?t -> on_outcome(w, t, false)
          :: empty(outbox[w])
          fi;
          /* Roster.remove, then WorkerLostError for what it still held */
          assert(live[w] && empty(outbox[w]));
#ifndef BUG_DROP_TASK_ON_CRASH
          if
          :: held[w] != 0 -> settle(held[w])
          :: else
          fi;
#endif
          held[w] = 0;
          live[w] = false;
          nlive--;
          check_invariants();
          worker_requests!CHANGED;  /* WorkerHandler.worker_gone */
          w = 0
        }
     fi;
     if
     :: st != 0 -> send_task(sw, st); sw = 0; st = 0  /* Handout.send, before the job is settled */
     :: else
     fi
  od;
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

/* PoolCore.start, then the caller: submit the tasks, close(), join(). */
init {
  byte w;
  bool saw_terminate;
  atomic {
    for (w : 0 .. N - 1) {  /* the first workers start before any handler thread */
      start_worker(w)
    }
    run TaskHandler();
    run ResultHandler();
    run WorkerHandler();
#if TERMINATE
    run Terminator();
#endif
  }
  atomic {  /* map_async(f, range(T)): one job of T tasks, refused unless in RUN (LIFE-3) */
    if
    :: state == S_RUN ->
       do
       :: submitted < T -> submitted++; taskq!submitted
       :: else -> break
       od
    :: else
    fi
  };
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
  /* ...and for one that began meanwhile (SHUT-4). refpool's core.join looks at the state only
     as it begins: JOIN_MISSES_LATE_TERMINATE models that, and SPIN finds JOB-1 broken. */
  if
  :: terminate_started -> terminate_done
  :: else
  fi;
#endif
  assert(nsettled == submitted);  /* JOB-1: once joined, every task has settled (exactly once: settle) */
  joined = true
}

/* SHUT-3, SHUT-4, JOB-1: every run ends with join() returned and every task settled. */
ltl done { <> (joined && nsettled == submitted) }
