"""Summarise py-spy's collapsed stacks: where the web workers' samples go.

    python -m bench.stacks FOLDER [SCENARIO] [--depth N]

Prints, per scenario, the share of samples whose stack passes through each
function (inclusive) and the functions with the most samples of their own.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re


def load(paths: list[str]) -> list[tuple[list[str], int]]:
    stacks = []
    for path in paths:
        with open(path) as handle:
            for line in handle:
                frames, _, count = line.rstrip().rpartition(" ")
                if frames:
                    stacks.append((frames.split(";"), int(count)))
    return stacks


def short(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame
    name, path = match.groups()
    parts = path.split("/")
    where = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({where})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("scenario", nargs="?")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    pattern = f"{args.scenario}-*.txt" if args.scenario else "*.txt"
    stacks = load(glob.glob(os.path.join(args.folder, pattern)))
    total = sum(c for _, c in stacks) or 1
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    for frames, count in stacks:
        names = [short(f) for f in frames]
        for name in set(names):
            inclusive[name] += count
        own[names[-1]] += count
    print(f"{total} samples")
    print("\n-- inclusive --")
    for name, count in inclusive.most_common(args.top):
        print(f"{100 * count / total:5.1f}%  {name}")
    print("\n-- own --")
    for name, count in own.most_common(args.top // 2):
        print(f"{100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
