"""The command line end to end: `mathrl train` and `accelerate launch -m mathrl.train`, real processes."""

import json

import pytest

SMOKE = "recipes/tiny-moe/grpo/smoke.yaml"


def test_train_command_end_to_end(tmp_path, python, run_command):
    out = tmp_path / "run"
    result = run_command([python, "-m", "mathrl.cli", "train", SMOKE, "--output", str(out),
                          "--set", "training.max_steps=1", "--set", "logging.progress=false"])
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grpo"]["steps"] == 1
    assert (out / "eval" / "arithmetic" / "report.md").is_file()


def test_train_command_unknown_key(python, run_command):
    result = run_command([python, "-m", "mathrl.cli", "train", SMOKE, "--set", "training.max_stepz=1"])
    assert result.returncode == 2
    assert "unknown recipe key 'training.max_stepz'" in result.stderr
    assert "max_steps" in result.stderr


def test_train_command_unknown_dataset(tmp_path, python, run_command):
    result = run_command([python, "-m", "mathrl.train", SMOKE, "--output", str(tmp_path / "r"),
                          "--set", "data.train.name=gsm9k"])
    assert result.returncode != 0
    assert "unknown dataset 'gsm9k'" in result.stderr


def test_data_list_command(python, run_command):
    result = run_command([python, "-m", "mathrl.cli", "data", "list"])
    assert result.returncode == 0
    for name in ("gsm8k", "math500", "arithmetic", "big_math"):
        assert name in result.stdout


@pytest.mark.distributed
def test_accelerate_launch_two_processes(tmp_path, run_command):
    out = tmp_path / "ddp"
    result = run_command(["accelerate", "launch", "--config_file", "recipes/accelerate/ddp.yaml", "-m", "mathrl.train",
                          SMOKE, "--output", str(out), "--set", "logging.progress=false"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es)" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2
    assert summary["grpo"]["steps"] == 2
