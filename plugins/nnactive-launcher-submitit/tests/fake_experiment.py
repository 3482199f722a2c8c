"""A stand-in for ``nnactive run``: an experiment of N steps that writes one loop file per step
(deterministic content), records its progress in ``state.json`` after each finished step and resumes
from it. It appends one line per start to ``attempts.txt`` so tests can count requeues, and writes its
own and its parent's pid to ``pids.json`` so tests can signal them, and the GPUs it was given
(``CUDA_VISIBLE_DEVICES``) to ``gpus.txt``.

    python fake_experiment.py FOLDER --steps N --seconds S [--fail-at K]
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--fail-at", type=int, default=-1)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    state_file = args.folder / "state.json"
    start = json.loads(state_file.read_text())["step"] if state_file.exists() else 0
    with open(args.folder / "attempts.txt", "a") as attempts:
        attempts.write(f"start at step {start}\n")
    write_atomic(args.folder / "pids.json", json.dumps({"pid": os.getpid(), "parent": os.getppid()}))
    write_atomic(args.folder / "gpus.txt", os.environ.get("CUDA_VISIBLE_DEVICES", "-"))
    print(f"resuming at step {start}" if start else "starting", flush=True)
    for step in range(start, args.steps):
        if step == args.fail_at:
            print(f"ValueError: step {step} failed", flush=True)
            sys.exit(2)
        time.sleep(args.seconds)
        rng = random.Random(f"{args.folder.name}-{step}")
        patches = [{"coords": [rng.randrange(64) for _ in range(3)], "size": [8, 8, 8]} for _ in range(4)]
        write_atomic(args.folder / f"loop_{step:03d}.json", json.dumps({"patches": patches}, indent=2))
        write_atomic(state_file, json.dumps({"step": step + 1}))
        print(f"step {step} done", flush=True)


if __name__ == "__main__":
    main()
