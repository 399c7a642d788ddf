import os

from suites.job import job_threads


def test_job_threads_never_exceed_the_cores_this_process_may_use():
    cores = len(os.sched_getaffinity(0))
    assert job_threads(cores + 4) == cores
    assert job_threads(1) == 1
    assert job_threads(0) == 1
