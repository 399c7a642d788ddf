"""dreamer.bench: parameter counts per preset, a tiny measurement row, and the FLOP counter."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch

from dreamer import bench
from dreamer.agent import has_bf16_matmul, resolve_precision
from dreamer.config import SIZES


def test_params_lists_every_size_near_its_name(capsys):
    rows = bench.main(["--params"])
    out = capsys.readouterr().out
    for size in SIZES:
        assert size in out
    counts = {(r["size"], r["obs"]): r["params"] for r in rows}
    assert set(counts) == {(s, o) for s in SIZES for o in bench.OBS_KINDS}
    for size in SIZES:
        ratio = counts[(size, "image")] / bench.nominal_params(size)
        assert 1 / 1.5 <= ratio <= 1.5, (size, counts[(size, "image")], ratio)
        # Wider presets have more parameters.
    image = [counts[(s, "image")] for s in SIZES]
    assert image == sorted(image)


def test_meta_count_equals_real_build():
    for obs in bench.OBS_KINDS:
        meta = bench.count_params(bench.build_agent("size1m", obs, "meta"))
        real_agent = bench.build_agent("size1m", obs, "cpu")
        assert meta == bench.count_params(real_agent)
        # The slow critic is not optimised and not counted.
        assert meta == sum(p.numel() for g in real_agent.opt.param_groups for p in g["params"])


def test_synthetic_batch_dtypes_and_flags():
    obs_space, act_space = bench.spaces("image")
    data = bench.synthetic_batch(obs_space, act_space, 3, 5)
    assert data["image"].shape == (3, 6, 64, 64, 3) and data["image"].dtype == torch.uint8
    assert data["action"].shape == (3, 6) and int(data["action"].max()) < 18
    assert data["is_first"][:, 0].all() and not data["is_first"][:, 1:].any()
    assert not data["is_last"].any() and not data["is_terminal"].any()
    obs_space, act_space = bench.spaces("proprio")
    data = bench.synthetic_batch(obs_space, act_space, 2, 4)
    assert data["obs"].shape == (2, 5, 24) and data["obs"].dtype == torch.float32
    assert data["action"].shape == (2, 5, 6) and data["action"].abs().max() <= 1


def test_tiny_measurement_writes_a_full_row(tmp_path, capsys):
    rows = bench.main(["--size", "size1m", "--obs", "proprio", "--device", "cpu", "--batch", "2",
                       "--length", "8", "--updates", "2", "--warmup", "0", "--matmul-n", "128",
                       "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert "FlopCounterMode" in out and "size1m" in out
    files = list(tmp_path.glob("*.jsonl"))
    assert len(files) == 1
    lines = files[0].read_text().splitlines()
    assert len(lines) == 1 == len(rows)
    row = json.loads(lines[0])
    for field in bench.ROW_FIELDS:
        assert field in row, field
    for field in ("params", "sec_per_update", "first_update_s", "updates_per_s", "flops_per_update", "flops_per_s",
                  "matmul_flops_per_s", "fraction_of_matmul", "peak_mem_bytes", "threads"):
        assert np.isfinite(row[field]) and row[field] > 0, (field, row[field])
    # The bench's default `auto` is the agent's: bf16 on a CPU with bf16 matmul units, else fp32.
    auto = "bfloat16" if has_bf16_matmul(torch.device("cpu")) else "float32"
    assert (row["size"], row["obs"], row["device"], row["precision"]) == ("size1m", "proprio", "cpu", auto)
    assert (row["batch"], row["length"], row["compile"]) == (2, 8, False)
    assert row["torch"] == torch.__version__ and row["host"]
    assert len(row["sec_per_update_all"]) == 2


@pytest.mark.parametrize("input_grad", [False, True])
def test_flop_counter_matches_hand_count_for_linear(input_grad):
    n, i, o = 32, 64, 48
    layer = torch.nn.Linear(i, o)
    x = torch.randn(n, i, requires_grad=input_grad)

    def step():
        layer(x).square().sum().backward()

    _, flops, by_op = bench.count_flops(step)
    # Forward n·i·o multiply-adds, weight gradient n·i·o, input gradient n·i·o when needed;
    # 2 FLOPs per multiply-add.
    hand = 2 * n * i * o * (3 if input_grad else 2)
    assert hand / 2 <= flops <= hand * 2
    assert flops == hand  # PyTorch's counter: exactly the matmul FLOPs
    assert sum(by_op.values()) == flops


def test_flop_counter_matches_hand_count_for_conv():
    conv = torch.nn.Conv2d(3, 8, 5, padding=2)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        _, flops, _ = bench.count_flops(conv, x)
    assert flops == 2 * 2 * 8 * 16 * 16 * 3 * 5 * 5


def test_matmul_rate_positive():
    assert bench.matmul_rate("cpu", "float32", n=64, min_time=0.0) > 0


def test_auto_precision_is_one_rule_for_agent_and_bench():
    cpu = torch.device("cpu")
    agent = bench.build_agent("size1m", "proprio", "cpu", "auto")
    assert agent.bf16 == (resolve_precision("auto", cpu) == "bfloat16") == has_bf16_matmul(cpu)
    assert resolve_precision("auto", torch.device("meta")) == "float32"
    with pytest.raises(ValueError, match="valid: auto, float32, bfloat16"):
        resolve_precision("fp8", cpu)


@pytest.mark.parametrize("args, message", [
    (["--device", "garbage"], "--device 'garbage' is not a device; valid: auto, cpu, cuda, cuda:N"),
    (["--precision", "fp8"], "unknown precision 'fp8'; valid: auto, float32, bfloat16"),
    pytest.param(["--device", "cuda"], "built without CUDA|this machine has 0 CUDA device",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has CUDA")),
])
def test_devices_and_precisions_that_are_not_here_exit_2_with_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit:
        bench.main(["--size", "size1m", "--device", "cpu", "--out", str(tmp_path / "bench"), *args])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and re.search(message, err) and err.count("\n") == 1, err
    assert not (tmp_path / "bench").exists()


def test_an_unknown_compile_value_is_an_error_naming_the_valid_ones(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        bench.main(["--size", "size1m", "--compile", "yes", "--out", str(tmp_path / "bench")])
    assert exit.value.code == 2 and "valid: false, true" in capsys.readouterr().err
    assert not (tmp_path / "bench").exists()


def test_a_failed_measurement_leaves_no_output_folder(tmp_path):
    # One step per sequence leaves the replay value no step to learn from: the update fails, in
    # the row's own process, and the error comes back here.
    with pytest.raises(RuntimeError, match="stack expects a non-empty TensorList"):
        bench.main(["--size", "size1m", "--device", "cpu", "--length", "1", "--threads", "1", "--no-progress",
                    "--out", str(tmp_path / "bench" / "today")])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("obs, batch, length", [("proprio", 16, 64), ("image", 3, 9)])
def test_update_flops_counted_on_meta_equal_a_real_update(obs, batch, length):
    cfg = bench.make_config(["size=size1m", "agent.precision=float32"]).agent
    real = bench.agent_for(cfg, obs, "cpu")
    data = bench.synthetic_batch(*bench.spaces(obs), batch, length)
    _, flops, _ = bench.count_flops(real.train, data, bench.initial_carry(real, batch))
    assert bench.update_flops(cfg, obs, batch, length) == flops


def test_help_shows_each_options_default(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for option, default in (("--size", "size12m"), ("--obs", "proprio"), ("--precision", "auto"), ("--compile", "false"),
                            ("--batch", "16"), ("--length", "64"), ("--updates", "3"), ("--warmup", "1"),
                            ("--matmul-n", "2048"), ("--out", "results/bench"), ("--seed", "0")):
        assert re.search(rf"{option} \S+ .*?default {re.escape(default)}\b", out), option


def test_each_row_is_measured_in_a_process_of_its_own(tmp_path, capsys):
    rows = bench.main(["--size", "size1m", "--obs", "proprio", "--device", "cpu", "--batch", "2", "--length", "8",
                       "--updates", "1", "--warmup", "0", "--matmul-n", "128", "--precision", "float32,bfloat16",
                       "--out", str(tmp_path), "--no-progress", "--threads", "1"])
    processes = [r["process"] for r in rows]
    assert len(set(processes)) == 2 and os.getpid() not in processes
    assert all(r["threads"] == 1 for r in rows)
    # One yardstick per precision, measured in this process and shared by the rows.
    assert rows[0]["matmul_flops_per_s"] == bench.matmul_rate("cpu", "float32", 128)


def test_op_profile_splits_an_update_by_op_as_computed_by_hand():
    seconds = {"aten::mkldnn_convolution": 2.0, "aten::convolution_backward": 3.0, "aten::mm": 1.0,
               "aten::mul": 3.5, "aten::add": 0.5}
    flops = {"convolution": 4e9, "convolution_backward": 6e9, "mm": 1e9}
    profile = bench.op_profile(seconds, flops, matmul=4e9)
    assert profile["convolution"] == {"share": 0.2, "sec": 2.0, "flops_per_s": 2e9, "fraction_of_matmul": 0.5}
    assert profile["convolution_backward"]["fraction_of_matmul"] == 0.5
    assert profile["mm"] == {"share": 0.1, "sec": 1.0, "flops_per_s": 1e9, "fraction_of_matmul": 0.25}
    assert profile["other"] == {"share": 0.4, "sec": 4.0, "flops_per_s": None, "fraction_of_matmul": None}
    assert profile["addmm"]["sec"] == 0 and profile["addmm"]["flops_per_s"] is None
    assert bench.largest_other_ops(seconds, 2) == {"aten::mul": 0.35, "aten::add": 0.05}


def test_profile_of_a_tiny_image_update_finds_its_convolutions():
    row = bench.measure("size1m", "image", batch=1, length=4, updates=1, warmup=0, matmul=1e11,
                        progress=False, profile=True)
    profile = row["profile"]
    assert sum(p["share"] for p in profile.values()) == pytest.approx(1.0)
    for op in ("convolution", "convolution_backward"):
        assert profile[op]["sec"] > 0 and profile[op]["fraction_of_matmul"] > 0, op
    text = bench.profile_table(row)
    assert "where one update's time goes" in text and re.search(r"convolution_backward +\d", text), text
    assert len(row["profile_other"]) == 5 and "largest of other: aten::" in text
