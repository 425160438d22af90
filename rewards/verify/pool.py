"""A pool of pre-started worker processes that enforces a hard time limit per verification or check.

Signal-based timers only work on the main thread and cannot interrupt a long C-level operation
such as a huge integer power, so each verification runs in a worker process, and a worker that
overruns its limit is killed and replaced. Workers are started with ``subprocess`` rather than
``multiprocessing``, so the pool also works inside daemonic processes (DataLoader or
``multiprocessing.Pool`` workers), which may not have multiprocessing children.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection, wait
from pathlib import Path

from rewards.verify.judge import Reason
from rewards.verify.options import VerifyOptions

__all__ = ["WorkerPool", "get_pool", "default_workers"]

logger = logging.getLogger(__name__)

_STARTUP_TIMEOUT_S = 120.0
_ROOT = str(Path(__file__).resolve().parents[2])


def default_workers() -> int:
    """Worker count: ``MATHRL_VERIFY_WORKERS`` if set, else the CPU count capped at 4."""
    env = os.environ.get("MATHRL_VERIFY_WORKERS")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"MATHRL_VERIFY_WORKERS={env!r} is not an integer; set it to e.g. 4") from None
        if value < 1:
            raise ValueError(f"MATHRL_VERIFY_WORKERS={env!r} must be >= 1")
        return value
    return max(1, min(4, os.cpu_count() or 1))


class _Worker:
    def __init__(self) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        env["PYTHONPATH"] = _ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rewards.verify._worker", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self.inbox = Connection(to_child_w, readable=False)
        self.outbox = Connection(from_child_r, writable=False)
        self.ready = False
        self.task: int | None = None
        self.deadline = 0.0

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for conn in (self.inbox, self.outbox):
            try:
                conn.close()
            except OSError:
                pass


class WorkerPool:
    """Runs ``judge`` calls in worker processes, each under its own wall-time limit."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"worker pool size must be >= 1, got {size}")
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.workers = [_Worker() for _ in range(size)]
        self.timeouts = 0

    @property
    def size(self) -> int:
        return len(self.workers)

    def grow(self, size: int) -> None:
        with self.lock:
            while len(self.workers) < size:
                self.workers.append(_Worker())

    def close(self) -> None:
        for worker in self.workers:
            worker.kill()
        self.workers = []

    def run(self, tasks: list[tuple[str, str, VerifyOptions]]) -> list[tuple[bool | None, Reason]]:
        """Judge every ``(gold, answer, options)`` task; an overrun yields ``(None, Reason.TIMEOUT)``."""
        jobs = [((gold, answer, options), options.timeout) for gold, answer, options in tasks]
        results = self.call("judge", jobs)
        verdicts = []
        for status, value in results:
            if status == "ok":
                verdicts.append((value[0], Reason(value[1])))
            elif status == "memory":
                verdicts.append((False, Reason.TOO_LARGE))
            elif status == "timeout":
                verdicts.append((None, Reason.TIMEOUT))
            else:
                verdicts.append((None, Reason.UNPARSED_ANSWER))
        return verdicts

    def call(self, target: str, jobs: list[tuple[tuple, float]]) -> list[tuple[str, object]]:
        """Run ``target`` (a name in ``rewards.verify._worker.TARGETS``) on each ``(args, timeout)`` job.

        Returns ``(status, result)`` per job, in order: status ``ok`` with the function's result,
        ``timeout`` when the job overran its limit, ``memory`` or ``error`` (with the error's repr).
        """
        # NOTE: one batch runs at a time, so calls from several threads of one process wait in turn.
        with self.lock:
            return self._run(target, jobs)

    def _run(self, target: str, jobs: list) -> list:
        results: list = [None] * len(jobs)
        pending = deque(range(len(jobs)))
        started = time.monotonic()
        while pending or any(w.task is not None for w in self.workers):
            now = time.monotonic()

            # 1. Hand tasks to idle workers; each task's clock starts when a worker receives it.
            for worker in self.workers:
                if pending and worker.ready and worker.task is None:
                    index = pending.popleft()
                    args, timeout = jobs[index]
                    try:
                        worker.inbox.send((index, target, args))
                    except OSError:
                        pending.appendleft(index)
                        self._replace(worker)
                        continue
                    worker.task = index
                    worker.deadline = now + timeout

            # 2. Wait for a result, a worker becoming ready, or the nearest deadline.
            busy = [w for w in self.workers if w.task is not None]
            starting = [w for w in self.workers if not w.ready]
            if not busy and not any(w.ready for w in self.workers):
                if now - started > _STARTUP_TIMEOUT_S:
                    raise RuntimeError(f"no verifier worker started within {_STARTUP_TIMEOUT_S:.0f} s")
            timeout = min((w.deadline for w in busy), default=now + 1.0) - now
            ready_conns = wait([w.outbox for w in busy + starting], timeout=max(0.0, timeout))

            # 3. Collect messages.
            for worker in busy + starting:
                if worker.outbox not in ready_conns:
                    continue
                try:
                    message = worker.outbox.recv()
                except (EOFError, OSError):
                    if worker.task is not None:
                        logger.warning("verifier worker %d exited during a task", worker.proc.pid)
                        results[worker.task] = ("timeout", None)
                    self._replace(worker)
                    continue
                if message[0] == "ready":
                    worker.ready = True
                    continue
                index, status, value = message
                if index == worker.task:
                    results[index] = (status, value)
                    worker.task = None

            # 4. Kill workers past their deadline.
            now = time.monotonic()
            for worker in list(self.workers):
                if worker.task is not None and now >= worker.deadline:
                    results[worker.task] = ("timeout", None)
                    self.timeouts += 1
                    self._replace(worker)
        return results

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self.workers[self.workers.index(worker)] = _Worker()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool(size: int | None = None) -> WorkerPool:
    """Return this process's pool, starting it on first use (a forked child starts its own)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.pid != os.getpid():
            _POOL = WorkerPool(size or default_workers())
        elif size and size > _POOL.size:
            _POOL.grow(size)
        return _POOL


@atexit.register
def _shutdown() -> None:
    if _POOL is not None and _POOL.pid == os.getpid():
        _POOL.close()
