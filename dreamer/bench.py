"""Benchmark of the train step: parameter counts per size preset, and updates/s, peak memory and
FLOPs of one update for a given size, observation type, device and precision (dreamer/README.md,
"Benchmark").

    python -m dreamer.bench --params
    python -m dreamer.bench --size size1m,size12m --obs proprio,image --device cpu \
        [--batch 16] [--length 64] [--updates 3] [--warmup 1] [--precision float32,bfloat16] \
        [--compile false,true] [--threads N] [--profile]

Parameter counts are the optimised parameters (`agent.model`: encoder, RSSM, decoder, heads,
actor, critic; not the slow critic, which is an EMA copy). They are taken from an agent built on
the `meta` device (shapes only, no memory), which gives exactly the count of a real build.

One measurement builds the agent, feeds it a synthetic batch (B, T+1) of the right dtypes, runs
one update under `torch.utils.flop_counter.FlopCounterMode` (forward + backward + optimizer of the
whole train step, imagination included; this counts matmul/conv/bmm FLOPs as PyTorch's counter
does — 2 per multiply-add, elementwise ops not counted; run eagerly, as compiled steps compute the
same), then `--warmup` plain updates (at least one with `--compile true`, `agent.compile`: the
update that compiles), then `--updates` timed ones. It reports the median seconds per update, the
seconds of the first update after the counted one (compilation included), peak memory, the FLOPs, the
machine's dense matmul rate measured in the same run at the same precision, the achieved FLOP/s
and its fraction of that matmul rate. Rows are printed as a table and appended as JSON lines to
`results/bench/<timestamp>.jsonl`. `--profile` adds where an update's time goes: one more update
under torch's profiler, each matmul and conv op's share of it and its own fraction of the matmul rate.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import itertools
import json
import multiprocessing
import os
import platform
import resource
import socket
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dreamer.agent import Agent, resolve_precision
from dreamer.config import SIZES, AgentConfig, make_config
from dreamer.cores import threads_now
from dreamer.device import resolve_device
from dreamer.env import Space, signal_spaces

OBS_KINDS = ("proprio", "image")
FLOP_NOTE = ("FLOPs are matmul/conv/bmm FLOPs as counted by torch.utils.flop_counter.FlopCounterMode "
             "(2 per multiply-add; elementwise ops not counted), forward + backward of one train step")
ROW_FIELDS = ("size", "obs", "device", "precision", "compile", "batch", "length", "params",
              "sec_per_update", "first_update_s",
              "updates_per_s", "flops_per_update", "flops_per_s", "matmul_flops_per_s",
              "fraction_of_matmul", "peak_mem_bytes", "torch", "threads", "host")


# ---- shapes ------------------------------------------------------------------------------------

def spaces(obs: str) -> tuple[dict[str, Space], dict[str, Space]]:
    """Atari-shaped ('image': 64×64×3 uint8, 18 discrete actions) or proprio-shaped ('proprio':
    one 24-float vector, 6-dim continuous action) observation and action spaces."""
    obs_space = dict(signal_spaces())
    if obs == "image":
        obs_space["image"] = Space((64, 64, 3), "uint8")
        act_space = {"action": Space((), "int32", 18)}
    elif obs == "proprio":
        obs_space["obs"] = Space((24,), "float32")
        act_space = {"action": Space((6,), "float32", 0, -1.0, 1.0)}
    else:
        raise ValueError(f"unknown obs kind {obs!r}; valid: {', '.join(OBS_KINDS)}")
    return obs_space, act_space


def build_agent(size: str, obs: str, device: str | torch.device = "cpu",
                precision: str = "auto", compile: bool = False) -> Agent:
    cfg = make_config([f"size={size}", f"agent.precision={precision}", f"agent.compile={compile}"])
    return agent_for(cfg.agent, obs, device)


def agent_for(cfg: AgentConfig, obs: str, device: str | torch.device = "cpu") -> Agent:
    """An agent of `cfg` for `obs`-shaped spaces (see `spaces`) on `device`."""
    obs_space, act_space = spaces(obs)
    if torch.device(device).type == "meta":
        # Construct every module directly on meta: shapes only, no allocation and no init work.
        with torch.device("meta"):
            return Agent(cfg, obs_space, act_space, device="meta")
    return Agent(cfg, obs_space, act_space, device=device)


def count_params(agent_or_module) -> int:
    module = agent_or_module.model if isinstance(agent_or_module, Agent) else agent_or_module
    return sum(p.numel() for p in module.parameters())


def param_counts(sizes=tuple(SIZES), obs_kinds=OBS_KINDS, device: str = "meta") -> dict:
    """{(size, obs): optimised parameter count}, built on `device` (meta by default)."""
    return {(s, o): count_params(build_agent(s, o, device)) for s in sizes for o in obs_kinds}


def nominal_params(size: str) -> float:
    """The count a preset's name promises: size12m → 12e6."""
    return float(size.removeprefix("size").removesuffix("m")) * 1e6


def params_table(counts: dict) -> str:
    sizes = list(dict.fromkeys(s for s, _ in counts))
    lines = ["optimised parameters (agent.model; slow critic excluded); built on the meta device",
             "image = 64x64x3 uint8 + 18 discrete actions (Atari), proprio = 24 floats + 6-dim "
             "continuous action",
             f"{'size':<10}{'image':>14}{'image/name':>12}{'proprio':>14}{'proprio/name':>14}"]
    for s in sizes:
        nom = nominal_params(s)
        img, pro = counts.get((s, "image")), counts.get((s, "proprio"))
        cell = lambda n, w: (f"{n:>14,}", f"{n / nom:>{w}.2f}") if n is not None else (f"{'-':>14}", f"{'-':>{w}}")
        a, b = cell(img, 12)
        c, d = cell(pro, 14)
        lines.append(f"{s:<10}{a}{b}{c}{d}")
    return "\n".join(lines)


# ---- synthetic data ----------------------------------------------------------------------------

def synthetic_batch(obs_space: dict[str, Space], act_space: dict[str, Space], batch: int, length: int,
                    device="cpu", seed: int = 0) -> dict[str, torch.Tensor]:
    """A replayed batch (B, T+1, ...) with random observations of the right dtypes; is_first True
    only at step 0, no episode ends; float keys (reward, vectors) standard normal, images uniform
    uint8, actions uniform (indices, or floats in [-1, 1])."""
    rng = np.random.default_rng(seed)
    B, L = batch, length + 1
    out = {}
    for key, space in obs_space.items():
        shape = (B, L, *space.shape)
        if key == "is_first":
            x = np.zeros(shape, bool)
            x[:, 0] = True
        elif space.dtype == "bool":
            x = np.zeros(shape, bool)
        elif space.dtype == "uint8":
            x = rng.integers(0, 256, shape, dtype=np.uint8)
        elif space.discrete:
            x = rng.integers(0, space.discrete, shape).astype(space.dtype)
        else:
            x = rng.standard_normal(shape).astype(space.dtype)
        out[key] = x
    act = act_space["action"]
    if act.discrete:
        out["action"] = rng.integers(0, act.discrete, (B, L)).astype(np.int32)
    else:
        out["action"] = rng.uniform(-1.0, 1.0, (B, L, *act.shape)).astype(np.float32)
    return {k: torch.as_tensor(v).to(device) for k, v in out.items()}


def initial_carry(agent: Agent, batch: int, device="cpu") -> dict[str, torch.Tensor]:
    r = agent.cfg.rssm
    return {"deter": torch.zeros(batch, r.deter, dtype=torch.float32, device=device),
            "stoch": torch.zeros(batch, r.stoch, dtype=torch.int64, device=device)}


# ---- counters ----------------------------------------------------------------------------------

def count_flops(fn, *args, **kwargs):
    """Run fn(*args, **kwargs) under FlopCounterMode → (result, total FLOPs, {op: FLOPs}).
    Whatever fn does (forward, backward, optimizer) is counted."""
    mode = FlopCounterMode(display=False)
    with mode:
        result = fn(*args, **kwargs)
    by_op = {str(op).split(".")[-1] if "." in str(op) else str(op): int(n)
             for op, n in mode.get_flop_counts().get("Global", {}).items()}
    return result, int(mode.get_total_flops()), by_op


def update_flops(cfg: AgentConfig, obs: str, batch: int = 16, length: int = 64) -> int:
    """FLOPs of one update of `cfg` on a `obs`-shaped batch × length (forward and backward of the
    losses, as `count_flops` counts them; the optimizer does no matmuls), counted on the meta
    device: no memory, no arithmetic. Every matmul of an update works per batch entry, on its T
    steps or the B·T imagination starts (the replay value drops the last step), so the count is
    B·(a·T + b); it is counted at B = 1 and T = 2, 3, where the meta device is quickest."""
    cfg = dataclasses.replace(cfg, precision="float32", compile=False)  # neither changes the count
    agent = agent_for(cfg, obs, "meta")
    counts = []
    for steps in (2, 3):
        data = synthetic_batch(*spaces(obs), 1, steps, "meta")
        carry = initial_carry(agent, 1, "meta")

        def update():
            losses, _, _ = agent.loss(data, carry)
            sum(losses.values()).backward()

        counts.append(count_flops(update)[1])
    return batch * (counts[0] + (length - 2) * (counts[1] - counts[0]))


def time_updates(agent: Agent, data: dict, carry: dict, count: int, progress: str = "") -> tuple[list, list]:
    """Wall and CPU seconds of each of `count` updates (with a progress bar titled `progress`, if given)."""
    wall, cpu = [], []
    for _ in _progress(range(count), progress, bool(progress)):
        t, c = time.perf_counter(), time.process_time()
        agent.train(data, carry)
        _sync(agent.device)
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return wall, cpu


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@functools.cache
def matmul_rate(device="cpu", precision: str = "float32", n: int = 2048, min_time: float = 1.0,
                min_reps: int = 5) -> float:
    """FLOP/s of a dense n×n @ n×n matmul at `precision` (2n³ FLOPs each), median over repeats
    after warming up for a fifth of `min_time`. Measured once per process and precision, so every
    row of a sitting is a fraction of the same yardstick (one run measured 364 and 201 GFLOP/s
    for two rows when each row timed its own)."""
    device = torch.device(device)
    dtype = _DTYPES[precision]
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    start = time.perf_counter()
    while time.perf_counter() - start < min_time / 5:
        torch.mm(a, b)
        _sync(device)
    times, start = [], time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < min_time and len(times) < 1000):
        t = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        times.append(time.perf_counter() - t)
    return 2.0 * n**3 / statistics.median(times)


class PeakMemory:
    """Peak memory over a `with` block. CUDA: torch.cuda.max_memory_allocated. CPU: the process's
    peak resident set (VmHWM, reset at entry through /proc/self/clear_refs, so each measurement is
    its own); where that is unavailable, ru_maxrss (process-lifetime peak, so not reset)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0
        self.base = 0
        self.source = ""

    def __enter__(self):
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            self.source = "cuda_max_memory_allocated"
            return self
        self.base = _proc_status_bytes("VmRSS") or 0
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets the peak RSS (VmHWM) to the current RSS
            self.source = "vmhwm"
        except OSError:
            self.source = "ru_maxrss"
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            _sync(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        elif self.source == "vmhwm" and _proc_status_bytes("VmHWM"):
            self.peak = _proc_status_bytes("VmHWM")
        else:
            self.source = "ru_maxrss"
            scale = 1 if sys.platform == "darwin" else 1024
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
        return False


def _proc_status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ---- measurement -------------------------------------------------------------------------------

def _host() -> str:
    return socket.gethostname()


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(size: str, obs: str, device="cpu", precision: str = "auto", batch: int = 16,
            length: int = 64, updates: int = 3, warmup: int = 1, matmul: float | None = None,
            matmul_n: int = 2048, seed: int = 0, progress: bool = True, compile: bool = False,
            profile: bool = False) -> dict:
    """One measurement row. `matmul` is the matmul FLOP/s to compare against (measured here when
    None). Update 0 is FLOP-counted (eagerly, not timed), then `warmup` untimed updates (at least
    one with `compile`: the update that compiles), then `updates` timed ones. The first update
    after the counted one is also reported on its own (`first_update_s`). With `profile`, one more
    update runs under torch's profiler (CPU only) and the row gets `profile` (see `op_profile`)."""
    device = torch.device(device)
    precision = resolve_precision(precision, device)
    torch.manual_seed(seed)
    with PeakMemory(device) as mem:
        agent = build_agent(size, obs, device, precision, compile)
        data = synthetic_batch(*spaces(obs), batch, length, device, seed)
        carry = initial_carry(agent, batch, device)
        with torch.compiler.set_stance("force_eager"):
            _, flops, by_op = count_flops(agent.train, data, carry)
        _sync(device)
        warmup = max(warmup, 1) if compile else warmup  # compiling is never among the timed updates
        wall, cpu = time_updates(agent, data, carry, warmup + updates,
                                 f"{size} {obs} {device.type} {precision}" if progress else "")
        first, times, cpu_times = wall[0], wall[warmup:], cpu[warmup:]
        op_seconds = profiled_op_seconds(agent, data, carry) if profile else None
    params = count_params(agent)
    del agent, data, carry
    gc.collect()
    if matmul is None:  # measured right after the updates, so both see the same machine load
        matmul = matmul_rate(device, precision, matmul_n)
    sec = statistics.median(times)
    flops_per_s = flops / sec
    return {
        "size": size, "obs": obs, "device": device.type, "precision": precision, "compile": compile,
        "batch": batch, "length": length, "params": params,
        "sec_per_update": sec, "updates_per_s": 1.0 / sec, "first_update_s": first,
        "sec_per_update_all": times, "cpu_sec_per_update": statistics.median(cpu_times), "timed_updates": updates,
        "warmup_updates": warmup + 1,
        "flops_per_update": flops, "flops_by_op": by_op, "flops_per_s": flops_per_s,
        "matmul_flops_per_s": matmul, "matmul_n": matmul_n,
        "fraction_of_matmul": flops_per_s / matmul,
        "peak_mem_bytes": int(mem.peak), "base_mem_bytes": int(mem.base), "peak_mem_source": mem.source,
        "torch": torch.__version__, "threads": torch.get_num_threads(), "host": _host(),
        "device_name": _device_name(device), "flop_note": FLOP_NOTE,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        **({"profile": op_profile(op_seconds, by_op, matmul),
            "profile_other": largest_other_ops(op_seconds)} if profile else {}),
    }


# The profiler's CPU op that does the work of each op the FLOP counter counts (on the CPU a
# forward convolution's time sits in oneDNN's op under aten::convolution).
PROFILED_OPS = {"aten::mkldnn_convolution": "convolution", "aten::convolution_backward": "convolution_backward",
                "aten::addmm": "addmm", "aten::mm": "mm", "aten::bmm": "bmm", "aten::baddbmm": "baddbmm"}


def profiled_op_seconds(agent: Agent, data: dict, carry: dict) -> dict[str, float]:
    """Self CPU seconds per op name of one update run under torch's profiler."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        agent.train(data, carry)
    return {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}


def op_profile(op_seconds: dict[str, float], flops_by_op: dict[str, int], matmul: float) -> dict:
    """Where an update's time goes: for each FLOP-counted op (and `other`: everything else), its
    share of the profiled update's self CPU time, seconds, FLOP/s and fraction of `matmul` FLOP/s.
    `op_seconds` is `profiled_op_seconds`' result, `flops_by_op` the FLOP counter's."""
    total = sum(op_seconds.values())
    seconds = {name: 0.0 for name in PROFILED_OPS.values()} | {"other": 0.0}
    for key, sec in op_seconds.items():
        seconds[PROFILED_OPS.get(key, "other")] += sec
    result = {}
    for name, sec in seconds.items():
        rate = flops_by_op.get(name, 0) / sec if sec and name != "other" else None
        result[name] = {"share": sec / total, "sec": sec, "flops_per_s": rate,
                        "fraction_of_matmul": rate / matmul if rate is not None else None}
    return result


def largest_other_ops(op_seconds: dict[str, float], n: int = 5) -> dict[str, float]:
    """The `n` ops of `other` (not FLOP-counted) that took longest: op name -> share of the update."""
    total = sum(op_seconds.values())
    others = sorted(((sec, key) for key, sec in op_seconds.items() if key not in PROFILED_OPS), reverse=True)
    return {key: sec / total for sec, key in others[:n]}


def profile_table(row: dict) -> str:
    """The `profile` of a row as text: one line per op with any time, largest share first."""
    lines = [f"{row['size']} {row['obs']} {row['device']} {row['precision']}{' compiled' if row['compile'] else ''}:"
             f" where one update's time goes (torch profiler, self CPU time)",
             f"  {'op':<22}{'share':>7}{'s':>8}{'FLOP/s':>9}{'frac':>7}"]
    for name, p in sorted(row["profile"].items(), key=lambda item: -item[1]["share"]):
        if p["sec"]:
            rate = "" if p["flops_per_s"] is None else _si(p["flops_per_s"])
            frac = "" if p["fraction_of_matmul"] is None else f"{p['fraction_of_matmul']:.3f}"
            lines.append(f"  {name:<22}{p['share']:>7.1%}{p['sec']:>8.3g}{rate:>9}{frac:>7}")
    lines.append("  largest of other: " + ", ".join(f"{k} {v:.1%}" for k, v in row["profile_other"].items()))
    return "\n".join(lines)


def _progress(it, desc: str, enabled: bool):
    if not enabled:
        return it
    try:
        from tqdm import tqdm
        return tqdm(it, desc=desc, leave=False, file=sys.stderr)
    except ImportError:  # pragma: no cover
        return it


def _si(x: float) -> str:
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def rows_table(rows: list[dict]) -> str:
    head = (f"{'size':<9}{'obs':<8}{'dev':<5}{'prec':<9}{'comp':<5}{'BxT':>7}{'params':>9}{'s/upd':>9}{'1st s':>8}"
            f"{'upd/s':>8}{'FLOP/upd':>10}{'FLOP/s':>9}{'matmul/s':>10}{'frac':>7}{'peak mem':>10}")
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['size']:<9}{r['obs']:<8}{r['device']:<5}{r['precision']:<9}{'yes' if r['compile'] else 'no':<5}"
            f"{str(r['batch']) + 'x' + str(r['length']):>7}{_si(r['params']):>9}"
            f"{r['sec_per_update']:>9.3g}{r['first_update_s']:>8.3g}{r['updates_per_s']:>8.3g}{_si(r['flops_per_update']):>10}"
            f"{_si(r['flops_per_s']):>9}{_si(r['matmul_flops_per_s']):>10}"
            f"{r['fraction_of_matmul']:>7.3f}{_si(r['peak_mem_bytes']) + 'B':>10}")
    lines.append(FLOP_NOTE + "; 1st s = the first timed update (with comp = yes: compilation included)"
                 "; matmul/s = a dense n×n matmul at the same precision timed in this "
                 "run; frac = FLOP/s ÷ matmul/s; peak mem = " +
                 ("peak RSS of the process (VmHWM, incl. the Python/torch baseline)"
                  if rows and rows[0]["device"] == "cpu" else "torch.cuda.max_memory_allocated"))
    return "\n".join(lines)


# ---- CLI ---------------------------------------------------------------------------------------

def _row(threads: int, *args) -> dict:
    """`measure(*args)` on `threads` threads, in a process of its own; the row says which."""
    torch.set_num_threads(threads)
    return {**measure(*args), "process": os.getpid()}


@contextlib.contextmanager
def using_threads(n: int):
    """torch on `n` threads inside the `with` block."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m dreamer.bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", action="store_true", help="print parameter counts for every size preset")
    p.add_argument("--verify", default="",
                   help="with --params: sizes (comma-separated) also built for real on CPU to check the meta count")
    p.add_argument("--size", default="size12m", help="comma-separated size presets (default %(default)s)")
    p.add_argument("--obs", default="proprio", help="comma-separated: proprio, image (default %(default)s)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="comma-separated: cpu, cuda (default %(default)s)")
    p.add_argument("--precision", default="auto",
                   help="comma-separated: float32, bfloat16, auto (as the agent resolves it: bf16 where "
                        "matmuls have bf16 units, i.e. CUDA or a CPU with AVX512-BF16/AMX; default %(default)s)")
    p.add_argument("--compile", default="false",
                   help="comma-separated: false, true (agent.compile: the RSSM's step functions "
                        "and the norms compiled; their compile time shows in the '1st s' column; default %(default)s)")
    p.add_argument("--batch", type=int, default=16, help="batch size B (default %(default)s)")
    p.add_argument("--length", type=int, default=64, help="sequence length T (default %(default)s)")
    p.add_argument("--updates", type=int, default=3, help="timed updates (default %(default)s)")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed updates after the first one, which is FLOP-counted and untimed "
                        "(with --warmup 0 it is the only warm-up; with --compile true at least one; default %(default)s)")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default 0: as a training run would choose them now, its cores that "
                        "other processes leave free, dreamer/cores.py)")
    p.add_argument("--matmul-n", type=int, default=2048, help="side of the timed reference matmul (default %(default)s)")
    p.add_argument("--out", default="results/bench", help="directory for the <timestamp>.jsonl file (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the agent and the synthetic batch (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--profile", action="store_true",
                   help="also profile one update per row (CPU only) and print where its time goes: each "
                        "matmul and conv op's share of the update and its own fraction of the matmul rate")
    args = p.parse_args(argv)

    if args.params:
        counts = param_counts()
        print(params_table(counts))
        for size in _csv(args.verify):
            for obs in OBS_KINDS:
                real = count_params(build_agent(size, obs, "cpu"))
                ok = "ok" if real == counts[(size, obs)] else "MISMATCH"
                print(f"verify {size} {obs}: real CPU build {real:,} vs meta {counts[(size, obs)]:,} {ok}")
        return [{"size": s, "obs": o, "params": n} for (s, o), n in counts.items()]

    if args.updates < 1 or args.warmup < 0:
        p.error("--updates must be >= 1 and --warmup >= 0")
    for size in _csv(args.size):
        if size not in SIZES:
            p.error(f"unknown size {size!r}; valid: {', '.join(SIZES)}")
    for obs in _csv(args.obs):
        if obs not in OBS_KINDS:
            p.error(f"unknown obs {obs!r}; valid: {', '.join(OBS_KINDS)}")
    compiles = {"false": False, "true": True}
    for value in _csv(args.compile):
        if value not in compiles:
            p.error(f"unknown --compile value {value!r}; valid: false, true")
    if args.profile and set(_csv(args.device)) != {"cpu"}:
        p.error("--profile measures CPU rows only; give --device cpu")
    try:
        for device in _csv(args.device):
            for precision in _csv(args.precision):
                resolve_precision(precision, resolve_device(device, "--device"))
    except ValueError as exc:
        p.exit(2, f"{p.prog}: error: {exc}\n")
    threads = args.threads or threads_now(len(os.sched_getaffinity(0)))
    path = Path(args.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.jsonl"
    rows = []
    # Each row in a process of its own, so that none inherits what an earlier one compiled,
    # cached or fragmented; the matmul yardstick is measured here, once per device and precision.
    spawn = multiprocessing.get_context("spawn")
    for device in _csv(args.device):
        for precision in _csv(args.precision):
            precision = resolve_precision(precision, torch.device(device))
            with using_threads(threads):
                rate = matmul_rate(device, precision, args.matmul_n)
            for size, obs, compile in itertools.product(_csv(args.size), _csv(args.obs),
                                                        [compiles[v] for v in _csv(args.compile)]):
                with spawn.Pool(1) as pool:
                    row = pool.apply(_row, (threads, size, obs, device, precision, args.batch, args.length,
                                            args.updates, args.warmup, rate, args.matmul_n, args.seed,
                                            not args.no_progress, compile, args.profile))
                rows.append(row)
                # made with the first row, so that a failed bench leaves no empty folder
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"[bench] {size} {obs} {device} {precision}{' compiled' if compile else ''}: "
                      f"{row['sec_per_update']:.4g} s/update (first {row['first_update_s']:.3g} s), "
                      f"{_si(row['flops_per_update'])} FLOP/update, "
                      f"{row['fraction_of_matmul']:.3f} of matmul rate", file=sys.stderr, flush=True)
    if not args.threads:
        print(f"threads: {threads}, as a training run would choose them now: the cores of "
              f"{len(os.sched_getaffinity(0))} that other processes left free")
    print(rows_table(rows))
    for row in rows if args.profile else []:
        print(profile_table(row))
    print(f"wrote {len(rows)} rows to {path}")
    return rows


if __name__ == "__main__":
    main()
