"""Faults the update must survive and report: skipped steps, overflowed norms, planted NaNs, pinned actions; bf16."""

from __future__ import annotations

import copy

import pytest
import torch

from td3exp.clipping import clip_modules
from td3exp.config import ConfigError
from td3exp.diagnostics import saturation_per_dimension

from .test_agent import flat, make_agent, make_batch


@pytest.mark.parametrize("optim", ["adam", "sgd"])
def test_a_skipped_first_step_then_a_clean_step_equals_one_clean_step(optim: str) -> None:
    """A non-finite first critic update leaves parameters and optimizer state as if it never happened."""
    agents = []
    for _ in range(2):
        torch.manual_seed(3)  # identical initial weights
        agents.append(make_agent(f"optim.name={optim}", "agent.policy_delay=2"))
    skipped, clean = agents
    bad = make_batch()
    bad.rewards[0, 0] = float("nan")
    skipped.update(bad, step=0)  # update 1: critic step only, skipped
    assert torch.isfinite(flat(skipped.critic)).all()
    torch.manual_seed(1)
    skipped.update(make_batch(seed=1), step=1)
    torch.manual_seed(1)
    clean.update(make_batch(seed=1), step=0)
    # the SGD bug this guards: an uninitialised momentum buffer moved parameters by ~1e35
    torch.testing.assert_close(flat(skipped.critic), flat(clean.critic), rtol=0, atol=0)
    mine, theirs = skipped.critic_optimizer.state, clean.critic_optimizer.state
    assert len(mine) == len(theirs) > 0
    for a, b in zip(mine.values(), theirs.values(), strict=True):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_an_infinite_gradient_norm_counts_as_critical_and_is_logged_as_it_is() -> None:
    agent = make_agent("agent.policy_delay=1", "clip.critic_max_norm=10")
    batch = make_batch()
    batch.rewards[0, 0] = 3e38  # squared error overflows float32: the gradient norm is inf
    m = agent.update(batch, step=0)
    assert not torch.isfinite(m["grad/critic"]) or not torch.isfinite(m["grad/critic_cnn"])
    assert m["alerts/critical"].item() >= 1 and m["alerts/nonfinite"].item() == 1
    for k in ("critic", "critic_cnn"):
        assert not torch.isnan(m[f"grad_clipped/{k}"]), "post-clip norm must not be inf * 0 = NaN"


def test_clip_of_an_infinite_total_reports_the_pre_clip_norms() -> None:
    layer = torch.nn.Linear(1, 1, bias=False)
    layer.weight.grad = torch.tensor([[float("inf")]])
    pre, post, total = clip_modules({"m": layer}, 1.0)
    assert torch.isinf(total) and torch.isinf(post["m"])


def test_debug_inject_nonfinite_at_skips_that_update_and_counts_it() -> None:
    agent = make_agent("agent.policy_delay=1", "debug.inject_nonfinite_at=2")
    agent.update(make_batch(), step=0)
    before = flat(agent.critic)
    m = agent.update(make_batch(seed=1), step=1)
    assert m["alerts/nonfinite"].item() == 1 and torch.equal(before, flat(agent.critic))
    m = agent.update(make_batch(seed=2), step=2)
    assert m["alerts/nonfinite"].item() == 1 and not torch.equal(before, flat(agent.critic))


def test_saturation_max_sees_one_pinned_action_dimension() -> None:
    pre = torch.tensor([[5.0, 0.1], [-4.0, 0.2], [6.0, -0.3], [3.5, 0.0]])  # steering pinned, throttle free
    per_dimension = saturation_per_dimension(pre, bounded=True)
    assert per_dimension.tolist() == [1.0, 0.0]
    assert per_dimension.mean().item() == 0.5 and per_dimension.max().item() == 1.0


def test_bf16_update_is_finite_and_close_to_fp32() -> None:
    torch.manual_seed(0)
    fp32 = make_agent("agent.policy_delay=1", "agent.precision=fp32")
    torch.manual_seed(0)
    bf16 = make_agent("agent.policy_delay=1", "agent.precision=bf16")
    torch.manual_seed(0)
    a = fp32.update(make_batch(), step=0)
    torch.manual_seed(0)
    b = bf16.update(make_batch(), step=0)
    assert all(torch.isfinite(v).all() for v in b.values())
    for key in ("loss/critic", "q/q1", "loss/actor"):
        assert b[key].dtype == torch.float32  # losses and metrics stay fp32
        assert b[key].item() == pytest.approx(a[key].item(), rel=0.05, abs=0.05)
    assert all(p.dtype == torch.float32 for p in bf16.critic.parameters())  # weights stay fp32


def test_bf16_keeps_q_values_and_the_td_error_in_fp32() -> None:
    """A Q of ~150 rounded to bf16 moves in steps of 1.0 (8 significant bits); the Q heads' output layers run in
    fp32, so bf16 changes the Q values only through the hidden layers, far less than that."""
    from .test_td3_math import make_agent as make_vector_agent
    from .test_td3_math import make_batch as make_vector_batch

    batch = make_vector_batch()
    q, loss = {}, {}
    for precision in ("fp32", "bf16"):
        agent = make_vector_agent(f"agent.precision={precision}")  # same weights: seeded before building
        with torch.no_grad():
            for head in (agent.critic.head.q1, agent.critic.head.q2):
                head[-1].bias.fill_(150.0)
            with agent.autocast:
                q[precision] = agent.critic(batch.obs, batch.actions)
        torch.manual_seed(3)  # the same target-smoothing noise
        loss[precision] = agent.critic_loss(batch.obs, batch.actions, batch.rewards, batch.next_obs,
                                            batch.terminated)[0]
    for fp32, bf16 in zip(q["fp32"], q["bf16"], strict=True):
        assert bf16.dtype == torch.float32 and fp32.abs().min() > 128  # where a bf16 ulp is 1.0
        assert (bf16 - fp32).abs().max() < 0.05
    assert loss["bf16"].item() == pytest.approx(loss["fp32"].item(), rel=1e-3)


def test_bf16_on_a_cpu_without_native_bf16_is_a_one_line_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # the CPU these tests run on has AVX512_BF16: it plays a plain AVX2 one here, the laptop CPU the error is for
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True, "avx512_bf16": False, "amx_bf16": False})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    fix = r"agent\.precision=bf16 .*capability AVX2.*set agent\.precision=fp32"
    with pytest.raises(ConfigError, match=fix) as error:
        make_agent("agent.precision=bf16")
    assert "\n" not in str(error.value)
    make_agent("agent.precision=fp32")  # fp32 there is fine


def test_training_state_round_trip_continues_identically() -> None:
    agent = make_agent("agent.policy_delay=1", "clip=auto", "seed=1")
    for i in range(3):
        agent.update(make_batch(seed=i), step=i)
    state = copy.deepcopy(agent.training_state())
    rng_state = torch.get_rng_state()
    reference = agent.update(make_batch(seed=9), step=3)
    restored = make_agent("agent.policy_delay=1", "clip=auto", "seed=2")  # a different seed: all state comes back
    restored.load_training_state(state)
    torch.set_rng_state(rng_state)
    again = restored.update(make_batch(seed=9), step=3)
    for key, value in reference.items():
        assert torch.equal(value, again[key]), key
    assert torch.equal(flat(agent.critic), flat(restored.critic))


def test_an_unmeasured_agent_learns_the_same_math_without_metrics_beyond_the_losses() -> None:
    from omegaconf import OmegaConf

    from td3exp import build

    from .conftest import compose_config
    from .test_agent import CPU, OBS

    cfg = OmegaConf.to_object(compose_config(["agent.start_steps=0", "agent.policy_delay=1", "agent.target_noise=0"]))
    torch.manual_seed(0)
    measured = build.build_agent(cfg, OBS, 2, CPU)  # type: ignore[arg-type]
    torch.manual_seed(0)
    plain = build.build_agent(cfg, OBS, 2, CPU, measure=False)  # type: ignore[arg-type]
    a, b = measured.update(make_batch(), step=0), plain.update(make_batch(), step=0)
    assert set(b) == {"loss/critic", "q/q1", "q/q2", "q/abs_diff", "q/target", "loss/actor"}
    assert b["loss/critic"].item() == pytest.approx(a["loss/critic"].item())
    torch.testing.assert_close(flat(plain.critic), flat(measured.critic))  # same clipped step (norm10 on the actor)
    torch.testing.assert_close(flat(plain.actor), flat(measured.actor))


def test_batched_act_matches_one_by_one_and_respects_start_steps() -> None:
    from .test_agent import OBS

    agent = make_agent("agent.start_steps=5")
    obs = torch.randint(0, 256, (3, *OBS), dtype=torch.uint8).numpy()
    greedy = agent.act_batch(obs, first_step=10, eval_mode=True)
    assert greedy.shape == (3, 2) and greedy.dtype.name == "float32"
    for i in range(3):
        torch.testing.assert_close(torch.from_numpy(agent.act(obs[i], 10, eval_mode=True)),
                                   torch.from_numpy(greedy[i]), rtol=1e-5, atol=1e-6)
    mixed = agent.act_batch(obs, first_step=4)  # step 4 is still random, steps 5 and 6 come from the actor
    assert (abs(mixed) <= 1).all()
    assert not torch.allclose(torch.from_numpy(mixed[1]), torch.from_numpy(greedy[1]), atol=0)  # noise added
    assert abs(mixed[1:] - greedy[1:]).max() < 0.6  # actor + N(0, 0.1) noise, not uniform
