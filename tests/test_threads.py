"""machlib._threads: numpy's BLAS limited to one thread inside serial_blas, restored afterwards."""

import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from machlib._threads import in_background, serial_blas, with_serial_blas


def _blas_threads() -> list[int]:
    return [int(p["num_threads"]) for p in threadpool_info() if p["user_api"] == "blas"]


def test_serial_blas_limits_and_restores():
    before = _blas_threads()
    assert before, "numpy links a BLAS that threadpoolctl sees"
    with serial_blas():
        assert _blas_threads() == [1] * len(before)
        with serial_blas():  # nested: still one thread
            assert _blas_threads() == [1] * len(before)
        assert _blas_threads() == [1] * len(before)  # the inner block does not lift the outer's limit
        a = np.arange(9.0).reshape(3, 3)
        np.testing.assert_allclose(a @ np.eye(3), a)
    assert _blas_threads() == before


def test_serial_blas_holds_for_worker_threads():
    # the previews render on two worker threads inside the caller's (main thread's) block: the
    # workers' own blocks change nothing, and the limit holds for them until the caller leaves
    before = _blas_threads()
    seen = []

    def work():
        with serial_blas():
            seen.append(_blas_threads())
        seen.append(_blas_threads())

    with serial_blas():
        threads = [threading.Thread(target=work) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert _blas_threads() == [1] * len(before)
    assert seen == [[1] * len(before)] * 4
    assert _blas_threads() == before
    outside = []

    def alone():
        with serial_blas():
            outside.append(_blas_threads())

    t = threading.Thread(target=alone)
    t.start()
    t.join(timeout=60)
    assert outside == [before]  # a worker's own block is a no-op


def test_with_serial_blas_wraps():
    @with_serial_blas
    def f(x, *, k=2):
        """doc"""
        return x * k, _blas_threads()

    before = _blas_threads()
    value, inside = f(3, k=4)
    assert value == 12 and inside == [1] * len(before) and f.__doc__ == "doc" and f.__name__ == "f"
    assert _blas_threads() == before


def test_in_background_returns_the_result_or_raises_its_error_in_the_caller():
    names = []
    wait = in_background(lambda: names.append(threading.current_thread().name) or 42, name="machlib-test")
    assert wait() == 42 and names == ["machlib-test"]

    def fail():
        raise ValueError("from the background")

    wait = in_background(fail)
    with pytest.raises(ValueError, match="from the background"):
        wait()
    assert wait(raise_error=False) is None
