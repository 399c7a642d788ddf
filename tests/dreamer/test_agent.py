import gymnasium as gym
import numpy as np
import pytest
import torch

from dreamer.agent import Agent
from dreamer.config import make_config
from dreamer.env import Space, signal_spaces


def tiny(overrides=()):
    return make_config(["size=size1m", *overrides]).agent


def spaces(image=False, discrete=True):
    obs = signal_spaces()
    obs["image" if image else "obs"] = Space((64, 64, 3), "uint8") if image else Space((4,), "float32")
    act = Space((), "int32", discrete=2) if discrete else Space((3,), "float32", 0, -1.0, 1.0)
    return obs, {"action": act}


def random_batch(obs_space, act_space, B=2, T=8, seed=0):
    rng = np.random.default_rng(seed)
    batch = {}
    for k, s in obs_space.items():
        if s.dtype == "uint8":
            batch[k] = rng.integers(0, 256, (B, T + 1, *s.shape), dtype=np.uint8)
        elif s.dtype == "bool":
            batch[k] = np.zeros((B, T + 1), bool)
        else:
            batch[k] = rng.normal(size=(B, T + 1, *s.shape)).astype(np.float32)
    a = act_space["action"]
    batch["action"] = (rng.integers(0, a.discrete, (B, T + 1)).astype(np.int32) if a.discrete
                       else rng.uniform(-1, 1, (B, T + 1, *a.shape)).astype(np.float32))
    return batch


def zero_carry(agent, B):
    return {"deter": np.zeros((B, agent.cfg.rssm.deter), np.float32), "stoch": np.zeros((B, 32), np.int64)}


def record_cartpole(steps=200, seed=0):
    """Real CartPole-v1 transitions under a random policy, in the agent's batch layout (1, steps)."""
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    first, reward, term, last = True, 0.0, False, False
    for _ in range(steps):
        action = int(rng.integers(2))
        rows.append((obs, action, reward, first, last, term))
        if last:
            obs, _ = env.reset()
            first, reward, term, last = True, 0.0, False, False
            continue
        obs, reward, term, trunc, _ = env.step(action)
        first, last = False, term or trunc
    env.close()
    o, a, r, f, l, t = map(np.array, zip(*rows))
    return {"obs": o[None].astype(np.float32), "action": a[None].astype(np.int32),
            "reward": r[None].astype(np.float32), "is_first": f[None], "is_last": l[None],
            "is_terminal": t[None]}


@pytest.mark.parametrize("image,discrete", [(False, True), (True, False)])
def test_train_and_policy_shapes(image, discrete):
    torch.manual_seed(0)
    obs_space, act_space = spaces(image, discrete)
    agent = Agent(tiny(), obs_space, act_space)
    batch = random_batch(obs_space, act_space)
    latents, metrics = agent.train(batch, zero_carry(agent, 2))
    assert latents["deter"].shape == (2, 8, 512) and latents["stoch"].shape == (2, 8, 32)
    assert latents["stoch"].max() < 4 and agent.updates == 1
    assert all(np.isfinite(v) for v in metrics.values())
    assert {"loss/rec", "loss/rew", "loss/con", "loss/dyn", "loss/rep", "loss/policy", "loss/value",
            "loss/repval"} <= set(metrics)
    obs = {k: v[:, 0] for k, v in batch.items() if k != "action"}
    action, state = agent.policy(obs, None)
    assert action["action"].shape == ((2,) if discrete else (2, 3))
    assert state["deter"].shape == (2, 512) and state["stoch"].shape == (2, 32)


def test_is_first_zeroes_carried_state_and_previous_action():
    torch.manual_seed(0)
    obs_space, act_space = spaces()
    agent = Agent(tiny(), obs_space, act_space)
    rssm = agent.model["rssm"]
    n = 3
    h = torch.randn(n, 512)
    z = torch.nn.functional.one_hot(torch.randint(0, 4, (n, 32)), 4).float()
    a = torch.randn(n, 2)
    embed = torch.randn(n, agent.model["enc"].out_dim)
    u = rssm.noise(n)
    with torch.no_grad():
        h_reset, _, post_reset = rssm.obs_step(h, z, a, embed, torch.ones(n, dtype=torch.bool), u)
        h_zero, _, post_zero = rssm.obs_step(torch.zeros_like(h), torch.zeros_like(z), torch.zeros_like(a),
                                             embed, torch.zeros(n, dtype=torch.bool), u)
        h_keep, _, _ = rssm.obs_step(h, z, a, embed, torch.zeros(n, dtype=torch.bool), u)
    assert torch.equal(h_reset, h_zero) and torch.equal(post_reset, post_zero)
    assert not torch.allclose(h_keep, h_zero)
    # Only the flagged rows are reset.
    mixed = torch.tensor([True, False, True])
    with torch.no_grad():
        h_mixed, _, _ = rssm.obs_step(h, z, a, embed, mixed, u)
    assert torch.equal(h_mixed[0], h_zero[0]) and torch.equal(h_mixed[1], h_keep[1])


def test_gradient_routing():
    torch.manual_seed(0)
    obs_space, act_space = spaces()
    agent = Agent(tiny(), obs_space, act_space)
    # Give the heads non-zero outputs so every loss has a gradient path.
    for _ in range(2):
        agent.train(random_batch(obs_space, act_space, seed=1), zero_carry(agent, 2))
    batch = agent._tensors(random_batch(obs_space, act_space, seed=2))
    batch["reward"] = torch.randn_like(batch["reward"])
    losses, _, _ = agent.loss(batch, agent._tensors(zero_carry(agent, 2)))
    m = agent.model
    world = [p for k in ("enc", "rssm", "dec", "reward", "cont") for p in m[k].parameters()]
    enc = list(m["enc"].parameters())

    def grads(loss, params):
        return torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)

    def moves(gs):
        return any(g is not None and g.abs().sum() > 0 for g in gs)

    assert not moves(grads(losses["policy"], world)), "actor loss must not reach the world model"
    assert moves(grads(losses["policy"], list(m["actor"].parameters())))
    assert not moves(grads(losses["value"], world)), "imagination starts are gradient-stopped"
    assert moves(grads(losses["rew"], enc)), "reward loss trains the world model"
    assert moves(grads(losses["repval"], enc)), "replay-value loss trains the world model"
    assert not moves(grads(losses["rec"], list(m["actor"].parameters())))


def test_world_model_overfits_a_fixed_batch_of_real_transitions():
    torch.manual_seed(0)
    data = record_cartpole(steps=4 * 33)
    batch = {k: v.reshape(4, 33, *v.shape[2:]) for k, v in data.items()}
    obs_space, act_space = spaces()
    agent = Agent(tiny(["agent.opt.warmup=0", "agent.opt.lr=1e-3"]), obs_space, act_space)
    carry = zero_carry(agent, 4)
    wm = ("loss/rec", "loss/rew", "loss/con", "loss/dyn", "loss/rep")
    history = []
    for _ in range(200):
        _, metrics = agent.train(batch, carry)
        history.append(sum(metrics[k] for k in wm))
    first, last = np.mean(history[:5]), np.mean(history[-5:])
    assert last <= 0.5 * first, (first, last)


def test_large_rewards_stay_finite():
    torch.manual_seed(0)
    obs_space, act_space = spaces(discrete=False)
    agent = Agent(tiny(), obs_space, act_space)
    rng = np.random.default_rng(0)
    carry = zero_carry(agent, 2)
    for i in range(300):
        batch = random_batch(obs_space, act_space, B=2, T=4, seed=i)
        batch["reward"] = rng.uniform(-1e4, 1e4, batch["reward"].shape).astype(np.float32)
        batch["is_terminal"][:, -1] = i % 3 == 0
        latents, metrics = agent.train(batch, carry)
        assert all(np.isfinite(v) for v in metrics.values()), (i, metrics)
    for p in agent.model.parameters():
        assert torch.isfinite(p).all()


def test_save_load_round_trip_continues_identically():
    obs_space, act_space = spaces()
    torch.manual_seed(0)
    a = Agent(tiny(), obs_space, act_space)
    batch = random_batch(obs_space, act_space)
    a.train(batch, zero_carry(a, 2))
    import io
    buf = io.BytesIO()
    torch.save(a.save(), buf)
    torch.manual_seed(1)
    b = Agent(tiny(), obs_space, act_space)
    buf.seek(0)
    b.load(torch.load(buf, weights_only=False))
    torch.manual_seed(5)
    _, ma = a.train(batch, zero_carry(a, 2))
    torch.manual_seed(5)
    _, mb = b.train(batch, zero_carry(b, 2))
    assert ma == mb and a.updates == b.updates == 2
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


def losses_and_grad(precision: str, batch, obs_space, act_space, device="cpu", compile=False):
    """Scaled losses and the flattened gradient of their sum for one batch, from seed-0 weights."""
    torch.manual_seed(0)
    agent = Agent(tiny([f"agent.precision={precision}", f"agent.compile={compile}"]), obs_space, act_space, device)
    torch.manual_seed(1)  # the same latent and action samples in both precisions
    with agent._autocast():
        losses, _, _ = agent.loss(agent._tensors(batch), agent._tensors(zero_carry(agent, 4)))
    sum(losses.values()).backward()
    grad = torch.cat([p.grad.flatten() for p in agent.model.parameters() if p.grad is not None])
    return {k: float(v.detach()) for k, v in losses.items()}, grad.cpu()


@pytest.mark.parametrize("image", [False, True])
def test_bf16_autocast_computes_the_fp32_losses_and_gradients(image):
    """bf16 keeps about 3 significant digits: the losses agree to a few percent and the gradient
    points the same way (cosine ≥ 0.99) as the fp32 step from the same weights and samples."""
    obs_space, act_space = spaces(image=image, discrete=True)
    batch = random_batch(obs_space, act_space, B=4, T=16)
    fp32, g32 = losses_and_grad("float32", batch, obs_space, act_space)
    bf16, g16 = losses_and_grad("bfloat16", batch, obs_space, act_space)
    for key in ("rec", "rew", "con", "dyn", "rep", "value", "repval"):
        assert bf16[key] == pytest.approx(fp32[key], rel=0.03, abs=1e-3), key
    assert torch.nn.functional.cosine_similarity(g32, g16, dim=0) >= 0.99


@pytest.mark.parametrize("image", [False, True])
def test_compiled_steps_compute_the_eager_losses_and_gradients(image):
    """agent.compile (the RSSM's step functions and every norm with its SiLU compiled) against the
    plain fp32 eager step: in fp32 to float tolerance, and compiled bf16 as closely as eager bf16 is
    held to fp32. Compiling takes about a minute on one core the first time, seconds from torch's
    compile cache."""
    obs_space, act_space = spaces(image=image, discrete=image)
    batch = random_batch(obs_space, act_space, B=4, T=16)
    fp32, g32 = losses_and_grad("float32", batch, obs_space, act_space)
    compiled, g_compiled = losses_and_grad("float32", batch, obs_space, act_space, compile=True)
    for key in fp32:
        assert compiled[key] == pytest.approx(fp32[key], rel=1e-4, abs=1e-6), key
    torch.testing.assert_close(g_compiled, g32, rtol=1e-3, atol=1e-5)
    bf16, g16 = losses_and_grad("bfloat16", batch, obs_space, act_space, compile=True)
    for key in ("rec", "rew", "con", "dyn", "rep", "value", "repval"):
        assert bf16[key] == pytest.approx(fp32[key], rel=0.03, abs=1e-3), key
    assert torch.nn.functional.cosine_similarity(g32, g16, dim=0) >= 0.99


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path runs where one is")
def test_cuda_auto_precision_step_matches_the_cuda_fp32_step():
    """On a GPU `auto` is bf16 autocast; compared on the same device, so both draw the same
    samples from CUDA's generator."""
    obs_space, act_space = spaces(image=True, discrete=True)
    batch = random_batch(obs_space, act_space, B=4, T=16)
    fp32, g32 = losses_and_grad("float32", batch, obs_space, act_space, "cuda")
    auto, g_auto = losses_and_grad("auto", batch, obs_space, act_space, "cuda")
    for key in ("rec", "rew", "con", "dyn", "rep", "value", "repval"):
        assert auto[key] == pytest.approx(fp32[key], rel=0.03, abs=1e-3), key
    assert torch.nn.functional.cosine_similarity(g32, g_auto, dim=0) >= 0.99
