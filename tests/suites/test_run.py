import json
import os
import re
import subprocess
import sys
import time

import pytest
import torch

from dreamer.config import to_dict
from dreamer.rundir import RunDir, RunIdentity
from suites import run as launcher
from suites.atari100k import TASKS as ATARI
from suites.base import Resources, SuiteError
from suites.jobs import JobRecord, process_start, write_record


def test_dry_run_prints_130_atari_runs_with_budget_resources_and_state(tmp_path):
    results = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "suites.run", "atari100k", "--seeds", "5", "--dry-run",
                           "--no-estimate", "--results", str(results)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [re.split(r"\s{2,}", line.strip()) for line in proc.stdout.splitlines() if line.startswith("atari_")]
    assert len(rows) == 130
    assert {(r[0], int(r[1])) for r in rows} == {(t, s) for t in ATARI for s in range(5)}
    assert all(r[2:] == ["440,000 frames", "1 gpu, 4 cpu, 32 GB, 24 h", "new"] for r in rows)
    assert "130 runs: 130 new; 130 to submit" in proc.stdout
    assert not results.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_the_main_commands_estimate_counts_size200m_without_making_an_update(tmp_path):
    # The first command of the README: a size200m image update measured on a CPU held 22 GB
    # and was killed; its FLOPs are counted on the meta device and priced at the rate of a
    # measured size12m proprio-shaped update instead.
    code = ("import resource, sys; from suites.run import main; code = main(sys.argv[1:]); "
            "print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", code, "atari100k", "--seeds", "5", "--dry-run",
                           "--results", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert int(out[-1].split()[1]) * 1024 < 4e9
    estimate, how = out[-3:-1]
    found = re.fullmatch(r"cost here: 27,244 updates per run × ([\d.e+]+) s per update ≈ ([\d.e+]+) h per run; "
                         r"130 runs, 1 at a time ≈ ([\d.e+]+) h", estimate)
    assert found, estimate
    assert re.fullmatch(r"  \(15,316 GFLOP per update \(counted, not run\) at ([\d,]+) GFLOP/s, the rate of size12m "
                        r"proprio-shaped updates measured on cpu bfloat16, [12] threads?; bigger updates reach a "
                        r"higher rate, so this is likely high; environment steps not counted\)", how), how
    rate = float(re.search(r"at ([\d,]+) GFLOP/s", how).group(1).replace(",", "")) * 1e9
    assert float(found.group(1)) == pytest.approx(15_316_142_784_512 / rate, rel=0.01)
    assert not tmp_path.joinpath("atari100k").exists()


def test_the_estimate_of_a_size1m_update_is_what_the_bench_measures():
    from dreamer import bench

    config = launcher.make_plan("bsuite", 1, tasks=["catch/0"], budget=2000, sets=["size=size1m"]).runs[0].config
    row = bench.measure("size1m", "proprio", "cpu", config.agent.precision, updates=3, matmul=1.0, progress=False)
    # Two estimates around one bench row: a busy machine may slow one of them.
    estimates = [launcher.cost.measure(config, "proprio", 1)[0] for _ in range(2)]
    assert any(0.7 <= e / row["sec_per_update"] <= 1.3 for e in estimates), (estimates, row["sec_per_update"])


def test_the_estimate_times_eager_updates_of_the_runs_config(monkeypatch):
    # Compilation is not counted: a compiled run's estimate is timed without compiling.
    def no_compile(*args, **kwargs):
        raise AssertionError("the estimate compiled")

    monkeypatch.setattr(torch, "compile", no_compile)
    plan = launcher.make_plan("bsuite", 1, tasks=["catch/0"], budget=2000,
                              sets=["size=size1m", "agent.compile=true", "run.batch_length=16"])
    seconds, how = launcher.cost.measure(plan.runs[0].config, "proprio", 1)
    assert seconds > 0
    assert how.startswith("measured: 2 size1m proprio-shaped updates of 16×16 on cpu ")
    assert how.endswith("measured without compiling: compiled steps are a little faster after a compilation "
                        "once per run")


@pytest.mark.parametrize("args, message", [
    (["nosuch"], "unknown suite 'nosuch'; valid: atari100k, dmc_proprio, dmc_vision, bsuite, minecraft"),
    (["atari100k", "--tasks", "atari_pong,atari_pongg"], "unknown atari100k task 'atari_pongg' (did you mean atari_pong"),
    (["atari100k", "--variant", "nope"], "unknown variant 'nope'; valid: dreamerv3, dmc2412"),
    (["atari100k", "--variant", "dmc2412"], "variant 'dmc2412' applies to dmc_proprio, dmc_vision"),
    (["atari100k", "--set", "run.trainratio=64"], "unknown config key 'run.trainratio'; did you mean run.train_ratio"),
    (["atari100k", "--set", "size=size3m"], "unknown size 'size3m'; valid sizes: size1m, size12m"),
    (["atari100k", "--profile", "PROFILE"], "unknown profile field 'gpus' in"),
    (["atari100k", "--executor", "slurm"], "--executor slurm needs --profile FILE"),
    (["atari100k", "--set", "run.device=garbage"], "run.device 'garbage' is not a device; valid: auto, cpu, cuda"),
    (["atari100k", "--set", "agent.precision=fp8"], "agent.precision 'fp8' is not one of auto, float32, bfloat16"),
    (["atari100k", "--set", "run.train_ratio=-1"], "run.train_ratio must be positive, got -1.0"),
    (["atari100k", "--set", "run.batch_size=0"], "run.batch_size must be positive, got 0"),
    (["atari100k", "--set", "agent.enc.mults=(1,1,1,1,1,1,1)"],
     "images of 64×64 do not fit the encoder: its 7 stages need square images with a side divisible by 128"),
    (["bsuite", "--tasks", "catch/0", "--set", "run.envs=2"], "bsuite runs need run.envs=1, got 2"),
    (["atari100k", "--tasks", ""], "--tasks names no task; valid: atari_alien, atari_amidar,"),
    (["atari100k", "--tasks", " , "], "--tasks names no task; valid: atari_alien, atari_amidar,"),
    (["atari100k", "--set", "run.budget=1000"], "--set run.budget=… would be overridden: the launcher sets "
                                                "run.budget per run; use --budget FRAMES"),
    (["bsuite", "--set", "run.budget_episodes=10"], "sets run.budget_episodes per run; use --budget FRAMES"),
    (["atari100k", "--set", "size=size1m", "run.seed=3"], "sets run.seed per run; use --seeds N"),
    # catch at train ratio 1024: 1,023 steps fill replay, the 1,024th brings the first update.
    (["bsuite", "--tasks", "catch/0", "--budget", "500", "--variant", "cpu_learn"],
     "a budget of 500 frames ends before the first update: training starts once replay holds "
     "run.train_start=1024 steps; the smallest budget with an update is --budget 1024"),
    # Atari: 1,023 steps fill replay, 4 more bring an update at train ratio 256, 4 frames each.
    (["atari100k", "--budget", "4100"], "the smallest budget with an update is --budget 4108"),
    (["atari100k", "--results", "FILE"], "is a file, not a folder of runs"),
    pytest.param(["atari100k", "--set", "run.device=cuda"], "built without CUDA",
                 marks=pytest.mark.skipif(torch.backends.cuda.is_built(), reason="this torch has CUDA")),
])
def test_bad_input_is_one_line_naming_the_valid_choices_and_exit_2(tmp_path, capsys, args, message):
    profile = tmp_path / "bad.yaml"
    profile.write_text("partition: gpu\ngpus: 2\n")
    results = tmp_path / "runs"
    afile = tmp_path / "README.md"
    afile.write_text("not a folder")
    argv = [{"PROFILE": str(profile), "FILE": str(afile)}.get(a, a) for a in args]
    argv += [] if "--results" in args else ["--results", str(results)]
    assert launcher.main(argv) == 2  # without --dry-run: nothing may be submitted either
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and message in err
    assert not results.exists()


def test_profile_fields_are_typed_and_override_the_suites_resources(tmp_path):
    from suites.registry import get_suite

    path = tmp_path / "p.yaml"
    path.write_text("partition: gpu\ncpus_per_task: 3\ntime_min: 90\n")
    profile = launcher.load_profile(path)
    assert launcher.resources(get_suite("atari100k"), profile) == Resources(gpus=1, cpus=3, mem_gb=32, hours=1.5)
    path.write_text("mem_gb: lots\n")
    with pytest.raises(SuiteError, match="'mem_gb' .* must be a non-negative integer, got 'lots'"):
        launcher.load_profile(path)
    path.write_text("- partition\n")
    with pytest.raises(SuiteError, match="not a mapping"):
        launcher.load_profile(path)


def test_the_repository_profiles_are_valid():
    for name in ("local", "example"):
        launcher.load_profile(launcher.Path(__file__).parents[2] / "slurm" / "profiles" / f"{name}.yaml")


def test_plan_resolves_suite_variant_and_set_overrides_per_run(tmp_path):
    plan = launcher.make_plan("dmc_proprio", 2, "dmc2412", ["run.train_ratio=64"],
                              ["dmc_walker_walk", "dmc_walker_walk"], results=tmp_path)
    assert [(r.task, r.seed) for r in plan.runs] == [("dmc_walker_walk", 0), ("dmc_walker_walk", 1)]
    run = plan.runs[1]
    # The override changes what the variant computes: the runs live apart from dmc2412's own.
    assert run.run_dir == tmp_path / "dmc_proprio" / "dmc2412+run.train_ratio=64" / "dmc_walker_walk" / "seed1"
    assert (run.config.run.seed, run.config.run.train_ratio, run.config.run.action_repeat) == (1, 64.0, 1)
    assert (run.config.size, run.config.run.budget, run.config.run.budget_episodes) == ("size1m", 500_000, 0)
    assert run.identity == RunIdentity("dmc_proprio", "dmc_walker_walk", "dmc2412+run.train_ratio=64", 1, {}, False)
    assert run.state == "new" and not tmp_path.joinpath("dmc_proprio").exists()


def test_budget_runs_are_marked_shortened_and_kept_apart(tmp_path):
    plan = launcher.make_plan("bsuite", 1, tasks=["catch/0"], budget=2000, results=tmp_path)
    run = plan.runs[0]
    assert plan.variant == "dreamerv3-budget2000"
    assert run.run_dir == tmp_path / "bsuite" / "dreamerv3-budget2000" / "catch-0" / "seed0"
    assert run.identity.shortened is True and run.identity.variant == "dreamerv3-budget2000"
    # bsuite's own budget is 10000 episodes; the shortened run counts frames only.
    assert (run.config.run.budget, run.config.run.budget_episodes) == (2000, 0)
    full = launcher.make_plan("bsuite", 1, tasks=["catch/0"], results=tmp_path).runs[0]
    assert (full.config.run.budget, full.config.run.budget_episodes) == (0, 10000)
    assert launcher.budget_text(full.config) == "10,000 episodes"


def test_a_run_resumes_only_with_the_config_it_started_with(tmp_path):
    run = launcher.make_plan("bsuite", 1, tasks=["catch/0"], results=tmp_path).runs[0]
    run.run_dir.mkdir(parents=True)
    RunDir(run.run_dir).write_config(run.identity, to_dict(run.config))
    assert launcher.make_plan("bsuite", 1, tasks=["catch/0"], results=tmp_path).runs[0].state == "partial"
    # Operational settings may change between starts (dreamer.config.OPERATIONAL_KEYS).
    launcher.make_plan("bsuite", 1, sets=["run.checkpoint_every=5"], tasks=["catch/0"], results=tmp_path)
    with pytest.raises(launcher.ConfigError, match=r"another config \(run.train_ratio: 1024.0 → 64.0\)"):
        launcher.make_plan("bsuite", 1, sets=["run.train_ratio=64"], tasks=["catch/0"], results=tmp_path,
                           name="dreamerv3")


def test_done_and_live_runs_are_not_submitted(tmp_path, capsys):
    args = ["bsuite", "--tasks", "catch/0,catch/1", "--seeds", "2", "--results", str(tmp_path)]
    plan = launcher.make_plan("bsuite", 2, tasks=["catch/0", "catch/1"], results=tmp_path)
    done, queued, running, dead = plan.runs
    done.run_dir.mkdir(parents=True)
    (done.run_dir / "DONE").write_text(json.dumps({"step": 2000}))
    # This test process stands in for a live local job controller (same pid, same start time) and,
    # holding its lock, for the training of `running`.
    me = str(os.getpid())
    for run in (queued, running):
        write_record(run.run_dir, JobRecord("local", me, time.time(), "", "", "", process_start(os.getpid())))
    write_record(dead.run_dir, JobRecord("local", me, time.time(), "", "", str(tmp_path / "none.pkl"), 1))
    with RunDir(running.run_dir).hold():
        assert launcher.main(args + ["--dry-run", "--no-estimate"]) == 0
        plan = launcher.make_plan("bsuite", 2, tasks=["catch/0", "catch/1"], results=tmp_path)
    out = capsys.readouterr().out
    rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines() if line.startswith("catch/")]
    states = {(r[0], int(r[1])): r[4] for r in rows}
    assert {r[5] for r in rows if r[4] in ("queued", "running")} == {f"local {me}"}
    assert states == {("catch/0", 0): "done", ("catch/0", 1): "queued", ("catch/1", 0): "running",
                      ("catch/1", 1): "interrupted"}  # its controller is gone and left no result: killed
    assert "4 runs: 1 done, 1 interrupted, 1 queued, 1 running; 1 to submit" in out
    assert [r.state for r in plan.runs if r.state in launcher.TO_SUBMIT] == ["interrupted"]
    assert launcher.why_not_done(plan.runs[3]) == "its job ended without an error (killed); the next launch resumes it"
    for run in plan.runs[3:]:
        run.state = "done"
    assert launcher.submit(plan, "local") == []
    assert not (tmp_path / ".submitit").exists()


def test_set_takes_several_overrides_in_one_flag(tmp_path, capsys):
    assert launcher.main(["bsuite", "--tasks", "catch/0", "--set", "run.train_ratio=64", "size=size1m",
                          "--set", "run.batch_size=8", "--results", str(tmp_path), "--dry-run", "--no-estimate"]) == 0
    assert "then run.train_ratio=64 size=size1m run.batch_size=8\n" in capsys.readouterr().out


def dry_run(tmp_path, capsys, *args: str) -> list[str]:
    """The lines a local dry run prints after the plan's summary line."""
    assert launcher.main(["bsuite", "--tasks", "catch/0", "--budget", "2000", "--set", "size=size1m",
                          "--results", str(tmp_path), "--dry-run", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    return out[[i for i, line in enumerate(out) if line.startswith("1 run: ")][0] + 1:]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_dry_run_says_the_gpus_are_missing_and_what_a_run_costs_here(tmp_path, capsys, monkeypatch):
    # One thread, as tests use (tests/conftest.py): two spinning OpenMP threads on cores that
    # other tests keep busy take minutes.
    monkeypatch.setattr(launcher, "job_threads", lambda cpus: 1)
    note, estimate, measured = dry_run(tmp_path, capsys)
    assert not tmp_path.joinpath("bsuite").exists()
    assert note == ("note: bsuite asks for 1 GPU per run and this machine has 0: local runs train where "
                    "run.device says (auto: the CPU)")
    # (2,000 frames − 1,023 before training starts) × train ratio 1,024 / (16 × 64 steps per batch)
    found = re.fullmatch(r"cost here: 977 updates per run × ([\d.e-]+) s per update ≈ ([\d.e-]+) h per run; "
                         r"1 run, 1 at a time ≈ \2 h", estimate)
    assert found, estimate
    assert float(found.group(2)) == pytest.approx(977 * float(found.group(1)) / 3600, rel=0.01)
    assert re.fullmatch(r"  \(measured: 2 size1m proprio-shaped updates of 16×64 on cpu (float32|bfloat16), "
                        r"1 thread; environment steps not counted\)", measured), measured
    assert dry_run(tmp_path, capsys, "--no-estimate") == [note]


def test_the_estimate_says_in_one_line_why_it_has_no_hours(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(launcher.cost, "gpu_note", lambda suite, resources: None)
    monkeypatch.setattr(launcher.cost, "measure", lambda config, obs, threads: (0.5, "stub"))
    assert launcher.main(["bsuite", "--tasks", "catch/0", "--set", "size=size1m", "--results", str(tmp_path),
                          "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == \
        "cost here: 0.5 s per update (stub); updates per run unknown: the budget counts episodes"

    def no_memory(config, obs, threads):
        raise MemoryError("cannot allocate 40 GB\nmore")

    monkeypatch.setattr(launcher.cost, "measure", no_memory)
    assert dry_run(tmp_path, capsys) == ["cost here: not measured (MemoryError: cannot allocate 40 GB)"]
    run = launcher.make_plan("bsuite", 1, tasks=["catch/0"], budget=2000, sets=["size=size1m"],
                             results=tmp_path).runs[0]
    run.run_dir.mkdir(parents=True)
    (run.run_dir / "DONE").write_text("{}")
    assert dry_run(tmp_path, capsys)[-1:] == ["cost here: nothing to submit"]


def test_ctrl_c_while_waiting_says_the_runs_go_on_and_how_to_stop_them(tmp_path, capsys, monkeypatch):
    def interrupted(plan):
        raise KeyboardInterrupt

    monkeypatch.setattr(launcher, "wait", interrupted)
    monkeypatch.setattr(launcher, "submit", lambda plan, executor: [])
    assert launcher.main(["bsuite", "--tasks", "catch/0,catch/1", "--budget", "2000", "--set", "size=size1m",
                          "--results", str(tmp_path), "--wait"]) == 130
    err = capsys.readouterr().err
    assert err == ("suites.run: interrupted; submitted runs go on; stop them with: python -m suites.stop bsuite "
                   f"--variant dreamerv3+size=size1m-budget2000 --tasks catch/0,catch/1 --results {tmp_path}\n")


def test_runs_whose_config_is_not_the_variants_live_in_a_folder_of_their_own():
    def folder(*sets, **kwargs):
        return launcher.make_plan("atari100k", 1, sets=list(sets), tasks=["atari_pong"], **kwargs).variant

    assert folder() == "dreamerv3"
    # What changes nothing a run computes keeps the variant's folder.
    assert folder("size=size200m", "run.device=cpu", "agent.compile=true", "run.log_every=5") == "dreamerv3"
    assert folder("size=size1m") == "dreamerv3+size=size1m"
    assert folder("run.device=cpu", "size=size1m", "run.train_ratio=64", "size=size12m",
                  budget=20_000) == "dreamerv3+size=size12m+run.train_ratio=64-budget20000"
    assert folder("agent.enc.mults=(2,3,4,4,4)", budget=20_000) == "dreamerv3+agent.enc.mults=_2,3,4,4,4_-budget20000"
    assert folder("size=size1m", name="small", budget=20_000) == "small-budget20000"
    assert launcher.make_plan("atari100k", 1, "cpu_atari", tasks=["atari_pong"]).variant == "cpu_atari"
    with pytest.raises(SuiteError, match="--name 'a/b' is not a folder name"):
        folder("size=size1m", name="a/b")
