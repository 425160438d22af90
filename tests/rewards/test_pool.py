from __future__ import annotations

import multiprocessing
import threading
import time

from rewards import Reason, verify, verify_many

# Both powers are allowed by the raised digit bound but take seconds to compute, so only the
# hard time limit can stop them.
SLOW = dict(gold="3^{30000000}", completion=r"\boxed{3^{30000001}}")
SLOW_OPTIONS = dict(max_digits=10**9, max_answer_chars=2000)


def test_timeout_kills_overrunning_worker():
    verify("1", r"\boxed{1+0}")  # warm the pool
    start = time.perf_counter()
    verdict = verify(SLOW["gold"], SLOW["completion"], timeout=0.3, **SLOW_OPTIONS)
    elapsed = time.perf_counter() - start
    assert verdict.correct is None
    assert verdict.reason is Reason.TIMEOUT
    assert elapsed < 1.0
    # The replacement worker answers the next call.
    assert verify("x+1", r"\boxed{1+x}").correct is True


def test_timeout_works_off_the_main_thread():
    results = []
    thread = threading.Thread(
        target=lambda: results.append(verify(SLOW["gold"], SLOW["completion"], timeout=0.3, **SLOW_OPTIONS))
    )
    thread.start()
    thread.join(timeout=30)
    assert results and results[0].reason is Reason.TIMEOUT


def test_verify_in_daemonic_worker_process():
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        verdicts = pool.starmap(verify, [(r"\frac{1}{2}", r"\boxed{0.5}"), ("2", r"\boxed{3}")])
    assert [v.correct for v in verdicts] == [True, False]


def test_verify_many_keeps_order_and_mixes_paths():
    pairs = [
        ("1", r"\boxed{1}"),  # settled in the calling process
        (r"\sqrt{8}", r"\boxed{2\sqrt{2}}"),  # needs the parser
        ("5", "I could not find it."),
        (SLOW["gold"], SLOW["completion"]),
        (r"x^2-1", r"\boxed{(x-1)(x+1)}"),
    ]
    verdicts = verify_many(pairs, timeout=0.3, **SLOW_OPTIONS)
    assert [v.reason for v in verdicts] == [
        Reason.EQUAL,
        Reason.EQUAL,
        Reason.NO_ANSWER,
        Reason.TIMEOUT,
        Reason.EQUAL,
    ]
