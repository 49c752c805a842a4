"""The load benchmark's check at a small size: 1,000 samples through ``taskgrove.run`` and the
OpenAI-compatible backend against the local fault-injecting server (429 with Retry-After, 500s,
malformed bodies, dropped connections, slow replies): every sample stored once, none lost, each with
its own reply. Timing is reported by ``bench/bench_load.py``, never asserted here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def bench_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "bench" / "bench_load.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_faults_are_deterministic_by_seed() -> None:
    bench = bench_module()
    first = [bench.fault_for(7, f"p{i}", 1) for i in range(2000)]
    assert first == [bench.fault_for(7, f"p{i}", 1) for i in range(2000)]
    assert first != [bench.fault_for(8, f"p{i}", 1) for i in range(2000)]
    assert {"429", "500", "malformed", "drop", "slow", None} == set(first)


def test_a_thousand_samples_under_faults_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    bench = bench_module()
    server = bench.ServerProcess(seed=3)
    try:
        report = bench.run_load(server.url, 1000, 64, tmp_path)
    finally:
        counts = server.stop()
    assert report["stored_lines"] == 1000
    assert report["missing"] == report["duplicated"] == report["unexpected"] == 0
    assert report["errors"] == 0 and report["wrong_replies"] == 0 and report["ok"]
    faults = counts["faults"]
    assert all(faults.get(kind, 0) > 0 for kind in ("429", "500", "malformed", "drop")), faults
    assert counts["attempts"] == 1000 + sum(n for kind, n in faults.items() if kind not in ("ok", "slow"))
