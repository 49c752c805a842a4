"""``taskgrove train`` as one process of a ``torchrun``/``accelerate launch`` job, for
tests/test_train_distributed.py: runs the real command line and, after training, writes what this
process saw to ``<RANKS_DIR>/rank-<r>.json`` (its rank, the world size, the distributed type and
the sum of each trainable tensor of its final model), so the test can check every process took
part and all ended with the same weights.

Usage: ``torchrun --nproc_per_node 2 tests/distributed_train.py RANKS_DIR train ARGS...``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from taskgrove.cli import main
from taskgrove.train import sft


def _record(ranks_dir: Path) -> None:
    train = sft.SFTTrainer.train

    def recorded(self: Any, **kwargs: Any) -> Any:
        result = train(self, **kwargs)
        model = self.accelerator.unwrap_model(self.model)
        sums = {n: float(p.detach().double().sum()) for n, p in model.named_parameters() if p.requires_grad}
        ranks_dir.mkdir(parents=True, exist_ok=True)
        seen = {
            "rank": self.rank,
            "world": self.world,
            "distributed_type": str(self.accelerator.distributed_type),
            "backend": str(self.accelerator.state.backend),
            "steps": result.steps,
            "weights": sums,
        }
        (ranks_dir / f"rank-{self.rank}.json").write_text(json.dumps(seen), encoding="utf-8")
        return result

    sft.SFTTrainer.train = recorded  # type: ignore[method-assign]


if __name__ == "__main__":
    _record(Path(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
