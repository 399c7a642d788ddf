import pytest
import torch

from dreamer.agent import ReturnNorm, lambda_return


def test_lambda_return_hand_worked_with_terminal():
    # Three steps after the start; the continue at step 2 is 0 (terminal), λ = 0.5.
    reward = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    cont = torch.tensor([[0.9, 0.9, 0.0, 0.9]])
    value = torch.tensor([[0.0, 10.0, 20.0, 30.0]])
    lam = 0.5
    # R_3 = v_3 = 30
    # R_2 = r_3 + c_3·((1−λ)·v_3 + λ·R_3) = 3 + 0.9·(15 + 15) = 30
    # R_1 = r_2 + c_2·(…) = 2 + 0 = 2
    # R_0 = r_1 + c_1·((1−λ)·v_1 + λ·R_1) = 1 + 0.9·(5 + 1) = 6.4
    ret = lambda_return(reward, cont, value, lam)
    assert ret.shape == (1, 3)
    assert ret[0].tolist() == pytest.approx([6.4, 2.0, 30.0])


def test_lambda_return_bootstraps_at_is_last():
    reward = torch.tensor([[0.0, 1.0, 1.0]])
    cont = torch.tensor([[1.0, 1.0, 1.0]])
    boot = torch.tensor([[5.0, 7.0, 9.0]])
    last = torch.tensor([[0.0, 1.0, 0.0]])
    # λ_1 = 0 because step 1 is last: R_0 = r_1 + c_1·boot_1 = 1 + 7 = 8.
    # R_1 = r_2 + c_2·((1−λ)·9 + λ·9) = 1 + 9 = 10.
    ret = lambda_return(reward, cont, boot, 0.95, last)
    assert ret[0].tolist() == pytest.approx([8.0, 10.0])


def test_lambda_return_with_lambda_one_is_discounted_sum():
    reward = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    cont = torch.full((1, 4), 0.5)
    value = torch.tensor([[0.0, 0.0, 0.0, 8.0]])
    ret = lambda_return(reward, cont, value, 1.0)
    assert ret[0, 0].item() == pytest.approx(1 + 0.5 * (1 + 0.5 * (1 + 0.5 * 8)))


def test_percentile_return_normaliser():
    norm = ReturnNorm(decay=0.99, perclo=5.0, perchi=95.0, limit=1.0)
    ret = torch.arange(101, dtype=torch.float32)  # P5 = 5, P95 = 95
    s1 = norm.update(ret)
    # After one update: lo = 0.01·5 = 0.05, hi = 0.01·95 = 0.95 → spread 0.9 < 1 → scale 1.
    assert norm.lo.item() == pytest.approx(0.05) and norm.hi.item() == pytest.approx(0.95)
    assert s1.item() == 1.0
    for _ in range(4):
        s = norm.update(ret)
    # After five updates: hi − lo = 90·(1 − 0.99⁵).
    assert s.item() == pytest.approx(90 * (1 - 0.99**5), rel=1e-5)
    big = norm.update(ret * 1000)
    expected = (90 * (1 - 0.99**5)) * 0.99 + 0.01 * 90000
    assert big.item() == pytest.approx(expected, rel=1e-5)
