"""retarget.pool: built objects are reused by key, never shared by two callers at once."""

from __future__ import annotations

import threading
import time

from handx_robot.retarget.pool import Pool


def test_pool_reuses_by_key_and_never_lends_one_object_twice():
    built = []

    def build():
        built.append(object())
        return built[-1]

    pool = Pool(per_key=2, max_keys=2)
    with pool.borrow("a", build) as a1:
        with pool.borrow("a", build) as a2:  # a1 is lent: a second caller gets its own
            assert a2 is not a1
    with pool.borrow("a", build) as a3:
        assert a3 in (a1, a2) and len(built) == 2  # reused, not rebuilt
    with pool.borrow("b", build), pool.borrow("c", build):
        pass
    with pool.borrow("a", build) as a4:  # 'a' was the oldest key, dropped when 'c' came
        assert a4 is built[-1] and len(built) == 5


def test_pool_under_threads_lends_each_object_to_one_thread_at_a_time():
    pool: Pool[dict] = Pool(per_key=4)
    lent, lock, clashes = set(), threading.Lock(), []

    def work():
        for _ in range(300):
            with pool.borrow("k", dict) as d:
                with lock:
                    if id(d) in lent:
                        clashes.append(id(d))
                    lent.add(id(d))
                time.sleep(0)  # let the other threads run while it is lent
                with lock:
                    lent.discard(id(d))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not clashes
