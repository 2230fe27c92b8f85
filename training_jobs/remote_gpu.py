"""Fine-tune the transformer on a machine that has a GPU but not this project's environment.

``prepare`` writes what such a machine needs into one folder: the split as Parquet (``text``,
``label``, ``split``; computed here, so both machines use the very same rows), the family's
configured parameters (``params.json``: that machine has no pydantic to fill them) and the
MiniLM encoder with fp16 weights (half the size, to fit a transfer). There, with this
project's ``airparadis`` and ``training_jobs`` folders (no environment: torch, transformers and
pandas are enough), run ``python -m training_jobs.families.transformer_gpu --split
DEST/split.parquet --encoder-dir DEST/minilm --defaults DEST/params.json --out OUT``. ``join``
reassembles the returned ``finetuned.safetensors`` when it came back cut into parts; then train with
``AIRPARADIS_TRAIN_TRANSFORMER_CHECKPOINT``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from training_jobs.settings import TrainingSettings

PARAMS_FILE = "params.json"
ENCODER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json")  # fmt: skip


def prepare(dest: Path) -> Path:
    """Write ``split.parquet`` (configured data, seed and shares), ``params.json`` (the
    configured transformer parameters) and ``minilm/`` into `dest`."""
    from safetensors.torch import load_file, save_file

    from airparadis.settings import PlatformSettings
    from training_jobs.families.transformer_model import encoder_dir
    from training_jobs.run_inputs import prepare_split
    from training_jobs.settings import TrainingSettings

    settings = TrainingSettings()
    split, _ = prepare_split(settings, PlatformSettings())
    parts = {"train": split.train, "validation": split.validation, "test": split.test}
    frames = [frame.assign(split=name) for name, frame in parts.items()]
    dest.mkdir(parents=True, exist_ok=True)
    pd.concat(frames, ignore_index=True).to_parquet(dest / "split.parquet", compression="zstd")
    (dest / "fingerprint.txt").write_text(split.fingerprint + "\n")
    write_params(dest / PARAMS_FILE, settings)
    source, target = encoder_dir(), dest / "minilm"
    target.mkdir(exist_ok=True)
    for name in ENCODER_FILES:
        shutil.copyfile(source / name, target / name)
    weights = load_file(str(source / "model.safetensors"))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()},
              str(target / "model.safetensors"))  # fmt: skip
    return dest


def write_params(path: Path, settings: TrainingSettings) -> Path:
    """Every transformer parameter, as configured here, for a machine without pydantic."""
    path.write_text(json.dumps(settings.transformer.model_dump(mode="json"), indent=2))
    return path


def join(parts: list[Path], target: Path) -> Path:
    """Concatenate parts (as cut by ``split -b``) back into one file."""
    with target.open("wb") as out:
        for part in sorted(parts):
            out.write(part.read_bytes())
    return target


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--dest", type=Path, default=Path(".gpu"))
    j = sub.add_parser("join")
    j.add_argument("parts", type=Path, nargs="+")
    j.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "prepare":
        print(prepare(args.dest))
    else:
        print(join(args.parts, args.out))


if __name__ == "__main__":
    _main()
