"""Reproducible training pipeline: a config file in, a published, versioned model out.

    python training/train.py training/configs/cn-vocational.toml [--models-root models]

The config names the data files, the seed and the matcher's parameters. The model is first
evaluated on a seeded hold-out of needs (ranking and the fit's calibration; metrics go into
its manifest, in :func:`iei_match.training.train_model`'s layout), then trained on all the
data and published under ``MODELS_ROOT/NAME/VERSION`` with ``CURRENT`` pointing to it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tomllib
from pathlib import Path

from iei_match.artifacts import data_fingerprint, publish_model
from iei_match.io import check_links, load_links, load_needs, load_programs
from iei_match.training import train_model


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config", type=Path)
    p.add_argument("--models-root", type=Path, default=Path("models"))
    args = p.parse_args(argv)
    raw = args.config.read_bytes()
    cfg = tomllib.loads(raw.decode("utf-8"))
    base = args.config.resolve().parent  # data paths are relative to the config file
    data = {k: (base / v).resolve() for k, v in cfg["data"].items()}
    needs, programs = load_needs(data["needs"]), load_programs(data["programs"])
    links = load_links(data["links"])
    check_links(links, needs, programs, data["links"])
    seed = cfg.get("seed", 0)
    result = train_model(needs, programs, links, params=cfg.get("matcher", {}),
                         test_size=cfg.get("evaluation", {}).get("test_size", 0),
                         random_state=seed, progress=True)
    metrics = {"config_sha256": hashlib.sha256(raw).hexdigest(), **result.metrics}
    for direction, figures in metrics.get("holdout", {}).items():
        print(direction, figures)
    path = publish_model(result.matcher, args.models_root / cfg["name"], metrics=metrics,
                         data_sha256=data_fingerprint(needs, programs, links))
    print(f"published {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
