"""Entry point of a verifier worker process: ``python -m rewards.verify._worker READ_FD WRITE_FD``.

It reads ``(task_id, target, args)`` tuples, calls the function that ``TARGETS`` names with
``args``, and writes ``(task_id, status, result)`` back, where status is ``ok``, ``memory`` (the
call ran out of memory) or ``error``. The parent kills it when a task overruns its time limit, so
it needs no timer of its own.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from multiprocessing.connection import Connection

_MEMORY_LIMIT_BYTES = 4 * 1024**3

# Functions a worker may run, by target name; only the parent process sends targets.
TARGETS = {
    "judge": "rewards.verify.judge:judge",
    "counterexample": "rewards.counterexample.check:check_in_process",
}


def _limit_memory() -> None:
    # A runaway sympy computation then fails with MemoryError instead of swapping the host.
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = _MEMORY_LIMIT_BYTES if hard == resource.RLIM_INFINITY else min(_MEMORY_LIMIT_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass


def _resolve(target: str):
    module, _, name = TARGETS[target].partition(":")
    return getattr(importlib.import_module(module), name)


def main(read_fd: int, write_fd: int) -> None:
    inbox = Connection(read_fd, writable=False)
    outbox = Connection(write_fd, readable=False)
    functions = {"judge": _resolve("judge")}

    _limit_memory()
    outbox.send(("ready", os.getpid()))
    log = logging.getLogger("rewards.verify.worker")
    while True:
        try:
            task_id, target, args = inbox.recv()
        except (EOFError, OSError):
            return
        try:
            if target not in functions:
                functions[target] = _resolve(target)
            status, result = "ok", functions[target](*args)
        except MemoryError:
            status, result = "memory", None
        except Exception as exc:  # noqa: BLE001 - one bad task must not end the worker
            log.warning("%s task failed on %r: %r", target, [str(a)[:80] for a in args[:2]], exc)
            status, result = "error", repr(exc)
        outbox.send((task_id, status, result))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
