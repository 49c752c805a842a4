"""Multi-process SFT for real: ``torchrun --nproc_per_node 2`` on CPU (gloo) runs ``taskgrove train``
in two processes (tests/distributed_train.py records what each saw); both take part, split the
data, end with the same weights, and only the main process writes the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures" / "train" / "tasks.py"


@pytest.mark.slow
def test_two_cpu_processes_train_one_model_together(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    pytest.importorskip("accelerate")
    ranks, out = tmp_path / "ranks", tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(HERE / "distributed_train.py"),
        str(ranks),
    ]
    command += ["train", "--include-path", str(FIXTURES), "--tasks", "trainfix/similar/parity", "--config-index", "2"]
    command += ["--batch-size", "2", "--grad-accum", "1", "--limit", "8", "--lr", "1e-3", "--logging-steps", "1"]
    command += ["--no-evaluate", "--output-dir", str(out)]
    src = str(HERE.parent / "src")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = [json.loads((ranks / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [s["rank"] for s in seen] == [0, 1] and all(s["world"] == 2 for s in seen)
    assert all(s["distributed_type"] == "DistributedType.MULTI_CPU" and s["backend"] == "gloo" for s in seen)
    assert seen[0]["weights"] == seen[1]["weights"]  # gradients were averaged: the replicas agree exactly
    run_dir = out / "single_parity_similar_LoRA_8"
    result = json.loads((run_dir / "train_result.json").read_text())
    data = json.loads((run_dir / "train_config.json").read_text())["data"]
    # 8 examples, 2 per batch per process: 2 steps (one process would take 4); the tokens of both
    assert result["processes"] == 2 and result["steps"] == 2 == seen[0]["steps"] == seen[1]["steps"]
    assert result["tokens"] == data["tokens"]
    assert len((run_dir / "log.jsonl").read_text().splitlines()) == 2  # logged once per step, by rank 0
    assert [p.name for p in run_dir.glob("checkpoint-*")] == ["checkpoint-2"]
    from safetensors.torch import load_file

    saved = load_file(str(run_dir / "adapter_model.safetensors"))
    assert len(saved) == len(seen[0]["weights"])
    assert sum(float(t.double().sum()) for t in saved.values()) == pytest.approx(sum(seen[0]["weights"].values()))
    assert done.stderr.count("trained 2 steps") == 1  # only the main process reports
