"""`make bench`: speed and memory measured as ratios against a baseline in the same run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def bench_parser(description: str | None) -> argparse.ArgumentParser:
    """The options every bench script takes: where to write, and which data to use."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"))
    parser.add_argument(
        "--data", type=Path, nargs="+",
        default=[Path(os.environ.get("AIRPARADIS_TRAIN_DATA", "../shared/data/sentiment140"))],
    )  # fmt: skip
    return parser
