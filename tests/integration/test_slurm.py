"""End to end on a real single-node SLURM cluster (slurm/local/start): sbatch job arrays, sacct
accounting, fake GPUs, preemption with requeue and resume. The cluster is left running for
later sessions (`slurm/local/stop` ends it); start is idempotent.
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import submitit

from dreamer.rundir import RunDir
from suites import jobs
from test_local_launch import REPO, check_done_run, launch, run_dir

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
MISSING = [b for b in ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd", "sbatch", "sacct")
           if shutil.which(b) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"SLURM binaries missing ({', '.join(MISSING)}): apt-get install -y "
                          "--no-install-recommends slurmctld slurmd slurm-client munge slurmdbd mariadb-server")


def start() -> str:
    proc = subprocess.run([str(REPO / "slurm" / "local" / "start")], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="session")
def cluster():
    out = start()
    assert out.startswith("export SLURM_CONF=") and out.count("\n") == 1  # eval "$(start)" works
    conf = out.strip().split("=", 1)[1]
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf
    yield Path(conf).parents[1]
    if old is None:
        del os.environ["SLURM_CONF"]
    else:
        os.environ["SLURM_CONF"] = old


def pids(base: Path) -> dict[str, str]:
    return {name: (base / "run" / f"{name}.pid").read_text().strip() for name in DAEMONS}


def test_start_is_idempotent(cluster):
    before = pids(cluster)
    assert all(Path(f"/proc/{pid}/comm").read_text().strip() == name for name, pid in before.items())
    assert start() == f"export SLURM_CONF={os.environ['SLURM_CONF']}\n"
    assert pids(cluster) == before


def test_start_in_another_folder_names_the_taken_port_and_starts_nothing(cluster, tmp_path):
    proc = subprocess.run([str(REPO / "slurm" / "local" / "start")], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "DREAMER_SLURM_DIR": str(tmp_path)})
    assert proc.returncode != 0 and "port 6817, which slurmctld needs, is in use" in proc.stderr, proc.stderr
    assert not list((tmp_path / "run").iterdir())  # no pid file: no daemon of this folder started


def executor(folder: Path) -> submitit.AutoExecutor:
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    ex.update_parameters(slurm_partition="local", gpus_per_node=1, cpus_per_task=1, mem_gb=1, timeout_min=5)
    return ex


def wait_state(record: jobs.JobRecord, wanted: str, timeout: float = 60) -> tuple[str, str]:
    deadline = time.time() + timeout
    while (state := jobs.job_states([record])[record])[0] != wanted and time.time() < deadline:
        time.sleep(0.5)
    return state


def record(job) -> jobs.JobRecord:
    return jobs.JobRecord("slurm", job.job_id, time.time(), str(job.paths.stdout), str(job.paths.stderr),
                            str(job.paths.result_pickle))


def test_submitit_jobs_get_a_fake_gpu_and_slurm_reports_their_states(cluster, tmp_path):
    ex = executor(tmp_path)
    # Library functions: the job unpickles them without this test module.
    gpu = ex.submit(subprocess.check_output, ["printenv", "CUDA_VISIBLE_DEVICES"], text=True)
    failing = ex.submit(int, "boom")
    assert gpu.result() == "0\n"  # gres hands out one of the fake GPU device files
    with pytest.raises(submitit.core.utils.FailedJobError, match="invalid literal for int"):
        failing.result()
    assert wait_state(record(gpu), "ended") == ("ended", "COMPLETED")  # from sacct
    assert wait_state(record(failing), "ended") == ("ended", "FAILED")
    sleeper = ex.submit(time.sleep, 120)
    assert wait_state(record(sleeper), "running") == ("running", "RUNNING")  # from squeue
    sleeper.cancel()
    assert wait_state(record(sleeper), "ended") == ("ended", "CANCELLED")


def sacct(job: str, *options: str) -> list[str]:
    """'JobID|State' lines of `job` (an array: its tasks) from slurm's accounting."""
    return subprocess.run(["sacct", "-n", "-P", "-X", *options, "-j", job, "-o", "JobID,State"],
                          capture_output=True, text=True, check=True).stdout.split()


def test_slurm_launch_is_one_job_array_whose_runs_reach_done(cluster, tmp_path):
    proc = launch(tmp_path, "--seeds", "2", "--executor", "slurm", "--wait")
    assert proc.returncode == 0, proc.stderr
    ids = [json.loads((run_dir(tmp_path, s) / "job.json").read_text())["job_id"] for s in (0, 1)]
    array = ids[0].split("_")[0]
    assert ids == [f"{array}_0", f"{array}_1"]
    for seed in (0, 1):
        check_done_run(tmp_path, seed, "slurm")
    # DONE is written just before a job returns, so the job may still be finishing.
    deadline = time.time() + 30
    while (acct := sorted(sacct(array))) != [f"{array}_0|COMPLETED", f"{array}_1|COMPLETED"] and time.time() < deadline:
        time.sleep(0.5)
    assert acct == [f"{array}_0|COMPLETED", f"{array}_1|COMPLETED"]
    again = launch(tmp_path, "--seeds", "2", "--executor", "slurm")
    assert again.returncode == 0 and "nothing to submit" in again.stdout


# Long enough (~150 updates) that slurm's kill lands before the run ends.
LONG = 1200


@pytest.mark.parametrize("interrupt", ["usr2", "requeue"])
def test_interrupted_job_requeues_and_resumes_to_the_counts_of_an_uninterrupted_one(cluster, tmp_path, interrupt):
    proc = launch(tmp_path, "--seeds", "2", "--executor", "slurm", budget=LONG)
    assert proc.returncode == 0, proc.stderr
    d = run_dir(tmp_path, 0, LONG)  # seed 1 runs alongside, uninterrupted
    job = json.loads((d / "job.json").read_text())
    deadline = time.time() + 180
    while not (d / "checkpoint").exists() and time.time() < deadline:
        time.sleep(0.1)
    assert (d / "checkpoint").exists() and not (d / "DONE").exists()
    if interrupt == "usr2":
        # The signal slurm sends before a time limit: submitit checkpoints the job and requeues
        # it. (`_interrupt()` without timeout sends SIGTERM too, which can kill that requeue call.)
        submitit.SlurmJob(Path(job["stdout"]).parent, job["job_id"])._interrupt(timeout=True)
    else:
        # What preemption with PreemptMode=REQUEUE does: slurm kills the job and queues it again;
        # it resumes from the last periodic checkpoint.
        subprocess.run(["scontrol", "requeue", job["job_id"]], check=True)

    # Re-launching while the job is requeued or running submits nothing; --wait follows it.
    proc = launch(tmp_path, "--seeds", "2", "--executor", "slurm", "--wait", budget=LONG)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to submit" in proc.stdout
    assert json.loads((d / "job.json").read_text()) == job
    done = check_done_run(tmp_path, 0, "slurm", budget=LONG)
    reference = check_done_run(tmp_path, 1, "slurm", budget=LONG)
    assert (done["step"], done["updates"]) == (reference["step"], reference["updates"]) == (LONG, reference["updates"])
    log = (d / "logs" / f"{job['job_id']}.log").read_text()
    assert log.count(f"job {job['job_id']} on") == 2 and "resuming at step" in log
    deadline = time.time() + 30
    while (acct := sacct(job["job_id"], "--duplicates"))[-1] != f"{job['job_id']}|COMPLETED" and time.time() < deadline:
        time.sleep(0.5)
    assert acct[-1] == f"{job['job_id']}|COMPLETED" and f"{job['job_id']}|REQUEUED" in acct[:-1], acct


def test_stop_cancels_slurm_jobs_and_the_next_launch_resumes_them(cluster, tmp_path):
    proc = launch(tmp_path, "--executor", "slurm", budget=LONG)
    assert proc.returncode == 0, proc.stderr
    d = run_dir(tmp_path, 0, LONG)
    job = json.loads((d / "job.json").read_text())["job_id"]
    deadline = time.time() + 180
    while not (d / "checkpoint").exists() and time.time() < deadline:
        time.sleep(0.1)
    assert (d / "checkpoint").exists() and not (d / "DONE").exists()
    stopped = subprocess.run([sys.executable, "-m", "suites.stop", "bsuite", "--tasks", "catch/0", "--results",
                              str(tmp_path)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == (f"tiny-budget{LONG} catch/0 seed 0: cancelled (slurm job {job}); its checkpoint "
                              "is kept; the next launch resumes it\n")
    # It returns once slurm has ended the job: a launch right after resubmits the run.
    assert sacct(job)[0].startswith(f"{job}|CANCELLED") and RunDir(d).holder() is None
    assert not (d / "DONE").exists()

    proc = launch(tmp_path, "--executor", "slurm", "--wait", budget=LONG)
    assert proc.returncode == 0, proc.stderr
    assert "1 run: 1 stopped; 1 to submit" in proc.stdout
    check_done_run(tmp_path, 0, "slurm", budget=LONG)
    resumed = json.loads((d / "job.json").read_text())["job_id"]
    assert resumed != job and "resuming at step" in (d / "logs" / f"{resumed}.log").read_text()
