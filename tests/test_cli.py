"""Config fuzz: malformed overrides, as a new user types them, each give exit 2 and one line naming the key and what
is allowed - no traceback, no run directory.  Real Hydra composition of conf/."""

from __future__ import annotations

import pytest

from td3exp import cli

from .conftest import run_td3exp

# (override(s), a word the one-line message must contain: the key or what is allowed)
MALFORMED = [
    (["+unknown_key=1"], "unknown_key"),
    (["++agent.zzz=3"], "agent.zzz"),
    (["agent.unknwon=3"], "agent.unknwon"),
    (["logger.wandb.mode=sometimes"], "online, offline, disabled"),
    (["clip=norm7"], "norm10"),
    (["agent=sac"], "td3"),
    (["env=mujoco"], "car_racing"),
    (["experiments=nope"], "seed_5k_baseline"),
    (["agent.batch_size=abc"], "agent.batch_size"),
    (["seed=1.5"], "seed"),
    (["agent.batch_size="], "agent.batch_size"),
    (["agent.batch_size"], "key=value"),
    (["agent.gamma=1.5"], "agent.gamma"),
    (["agent.tau=0"], "agent.tau"),
    (["total_steps=-5"], "total_steps"),
    (["agent.batch_size=0"], "agent.batch_size"),
    (["optim.actor_lr=-1"], "optim.actor_lr"),
    (["reward.normalize=maybe"], "none, clip, running"),
    (["device=tpu"], "device"),
    (["agent.actor_head=sigmoid"], "tanh, unbounded"),
    (["encoder.pixel_scale=half"], "unit, raw"),
    (["optim.name=rmsprop"], "adam, sgd"),
    (["agent.precision=fp8"], "fp32, bf16"),
    (["clip.max_norm=0"], "clip.max_norm"),
    (["eval.episodes=-1"], "eval.episodes"),
    (["monitor.thresholds.actor.warning=-1"], "monitor.thresholds.actor"),
    (["monitor.saturation.warning=2"], "monitor.saturation"),
    (["agent.hidden_dims=[]"], "agent.hidden_dims"),
    (["agent.buffer_size=10", "agent.batch_size=256"], "agent.buffer_size"),
    (["total_steps=100", "agent.start_steps=1000"], "agent.start_steps"),
    (["clip=auto", "clip.max_norm=10"], "clip.max_norm"),
    (["reward.weights.progress=-1"], "reward.weights.progress"),
    (["checkpoint.keep=0"], "checkpoint.keep"),
    (["logger.log_every=0"], "logger.log_every"),
    (["agent.policy_delay=two"], "agent.policy_delay"),
    (["clip=none,norm1"], "--multirun"),
]


@pytest.mark.parametrize(("overrides", "named"), MALFORMED, ids=[" ".join(o) for o, _ in MALFORMED])
def test_malformed_override_exits_2_with_one_line(overrides: list[str], named: str, capsys) -> None:
    cli.register()
    with pytest.raises(SystemExit) as stopped:
        cli.preflight(overrides)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("td3exp: config error:"), err
    assert named in lines[0], lines[0]
    assert "Traceback" not in err and "search path" not in err


def test_a_valid_config_passes_preflight(capsys) -> None:
    cli.register()
    cli.preflight(["clip=norm1", "reward=progress_dominant", "agent.precision=bf16"])
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("override", ["+unknown_key=1", "clip=norm7", "agent.batch_size=abc"])
def test_the_real_command_exits_2_in_one_line_and_leaves_no_run_directory(override: str, tmp_path) -> None:
    result = run_td3exp([override, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=60)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "run").exists() and not list(tmp_path.rglob("events.out.tfevents.*"))
