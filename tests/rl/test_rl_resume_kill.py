"""A GRPO run killed with SIGKILL resumes from its last checkpoint and ends where an uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import time

import torch

from mathrl.models import load_model

SMOKE = "recipes/tiny-moe/grpo/smoke.yaml"
ARGS = ["--set", "logging.progress=false", "--set", "sft.enable=false", "--set", "eval.datasets=[]",
        "--set", "rewards=[{name: 'tests/rl/rewards_for_tests.py:prefer_short'}]", "--set", "training.max_steps=6",
        "--set", "training.save_steps=2", "--set", "training.save_total_limit=5", "--set", "num_threads=1",
        "--set", "training.learning_rate=0.01",
        # The measured kernel choice can differ between processes; pin it so both runs compute alike.
        "--set", "moe.expert_impl=grouped_mm"]


def _train(output, env, extra=()):
    return subprocess.Popen([sys.executable, "-m", "mathrl.train", SMOKE, "--output", str(output), *ARGS, *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_sigkill_then_resume_matches_uninterrupted(tmp_path, run_command):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    reference = _train(tmp_path / "straight", env)
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err[-2000:]

    killed = _train(tmp_path / "killed", env)
    deadline = time.time() + 600
    checkpoint = tmp_path / "killed" / "checkpoints" / "checkpoint-2"
    while not checkpoint.exists() and time.time() < deadline and killed.poll() is None:
        time.sleep(0.2)
    assert checkpoint.exists(), "no checkpoint appeared before the kill"
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "final").exists(), "the run finished before it was killed"

    resumed = _train(tmp_path / "killed", env, ["--resume"])
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    assert "resuming GRPO from" in err and "checkpoint-" in err

    straight = load_model(str(tmp_path / "straight" / "final"))
    again = load_model(str(tmp_path / "killed" / "final"))
    for (name, a), (_, b) in zip(straight.named_parameters(), again.named_parameters()):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5, msg=name)
