"""A stand-in for ``nnactive run --experiment NAME`` in launcher and grid tests: it finds the
experiment through the real layout, holds the real lock and walks the real state machine to the end,
saving ``state.json`` after every step, without nnU-Net. An experiment listed in ``FAKE_FAIL``
(comma-separated names) records an error in its state and exits 1, as the runner does.

    python fake_runner.py run --experiment NAME
"""

import os
import sys

from nnactive_core.experiment.config import ExperimentConfig
from nnactive_core.experiment.layout import Roots, find_experiment
from nnactive_core.experiment.lock import ExperimentLock
from nnactive_core.experiment.state import load_state, save_state


def main() -> None:
    if sys.argv[1:3] != ["run", "--experiment"] or len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} run --experiment NAME")
    name = sys.argv[3]
    layout = find_experiment(Roots.from_env(), name)
    if layout is None:
        sys.exit(f"experiment {name} not found")
    config = ExperimentConfig.load(layout.results)
    with ExperimentLock(layout.results):
        state = load_state(layout.results)
        while not state.finished:
            if name in os.environ.get("FAKE_FAIL", "").split(","):
                save_state(layout.results, state.with_error("RuntimeError: CUDA out of memory\n  details"))
                print("RuntimeError: CUDA out of memory", file=sys.stderr)
                sys.exit(1)
            state = save_state(layout.results, state.advance(config.query_steps))
            print(f"loop {state.loop} {state.step}", flush=True)


if __name__ == "__main__":
    main()
