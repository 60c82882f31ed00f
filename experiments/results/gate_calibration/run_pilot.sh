#!/usr/bin/env bash
# Two queues, one job each (one thread): 30 runs of the pre-registered pilot on both cores without idle tails.
cd "$(dirname "$0")"
export OMP_NUM_THREADS=1 SDL_VIDEODRIVER=dummy WANDB_MODE=disabled PYTHONPATH=$PWD
condition() {  # name, overrides...
  local name=$1; shift
  .venv/bin/python -m td3exp --multirun experiments=gate_pilot hydra/launcher=parallel hydra.launcher.n_jobs=1 \
    seed=0,1,2,3,4 "$@" hydra.sweep.dir=multirun/gate_pilot/$name > logs/$name.log 2>&1
  echo "$(date +%T) $name rc=$?" >> logs/done.txt
}
mkdir -p logs
( condition defaults; condition large_actor_lr optim.actor_lr=1e-2; condition no_smoothing agent.target_noise=0.0 agent.policy_delay=1 ) &
( condition unbounded_actor agent.actor_head=unbounded; condition large_critic_lr optim.critic_lr=1e-2; condition no_target_networks agent.tau=1.0 ) &
wait
echo "$(date +%T) all done" >> logs/done.txt
