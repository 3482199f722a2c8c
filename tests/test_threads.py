"""Thread budget: affinity, cgroup quota, OMP_NUM_THREADS."""

from __future__ import annotations

import os

import pytest

from nnactive_core import threads


def test_quota_rounds_up_and_max_means_none(tmp_path):
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert threads._quota_cores(cpu_max) == 2
    cpu_max.write_text("max 100000\n")
    assert threads._quota_cores(cpu_max) is None
    cpu_max.write_text("garbage\n")
    assert threads._quota_cores(cpu_max) is None
    assert threads._quota_cores(tmp_path / "missing") is None


def test_usable_cores_is_the_affinity_bounded_by_the_quota(monkeypatch):
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.setattr(threads, "_quota_cores", lambda: None)
    assert threads.usable_cores() == affinity
    monkeypatch.setattr(threads, "_quota_cores", lambda: 1)
    assert threads.usable_cores() == 1
    monkeypatch.setattr(threads, "_quota_cores", lambda: affinity + 8)
    assert threads.usable_cores() == affinity


@pytest.mark.parametrize(("value", "expected"), [("3", 3), ("4,2", 4), ("0", None), ("x", None), ("", None)])
def test_budget_respects_omp_num_threads(monkeypatch, value, expected):
    monkeypatch.setattr(threads, "usable_cores", lambda: 7)
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert threads.thread_budget() == (7 if expected is None else expected)


def test_torch_threads_sets_and_restores(monkeypatch):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with threads.torch_threads() as count:
        assert count == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), threads.torch_threads(2):
        raise RuntimeError
    assert torch.get_num_threads() == before


def test_limited_caps_the_budget_of_its_own_thread_only(monkeypatch):
    import threading

    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    seen = []
    with threads.limited(1):
        assert threads.thread_budget() == 1
        worker = threading.Thread(target=lambda: seen.append(threads.thread_budget()))
        worker.start()
        worker.join()
        with threads.limited(8):
            assert threads.thread_budget() == 4
    assert seen == [4] and threads.thread_budget() == 4
