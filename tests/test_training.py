"""The training pipeline: a config file in, a published, verified model out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from iei_match.artifacts import load_model, verify_model

ROOT = Path(__file__).resolve().parents[1]


def test_bundled_configs_name_existing_files():
    import tomllib

    for config in (ROOT / "training" / "configs").glob("*.toml"):
        cfg = tomllib.loads(config.read_text(encoding="utf-8"))
        for path in cfg["data"].values():
            assert (config.parent / path).resolve().is_file(), (config, path)


def test_config_in_published_model_out(tmp_path):
    from synthetic import make_catalog  # the checkerboard catalog of the matcher tests

    needs, programs, links, _ = make_catalog("zh", seed=3)
    for name, frame in (("needs", needs), ("programs", programs), ("links", links)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    config = tmp_path / "tiny.toml"
    config.write_text(
        'name = "tiny"\nseed = 7\n[data]\nneeds = "needs.csv"\nprograms = "programs.csv"\n'
        'links = "links.csv"\n[evaluation]\ntest_size = 0.25\n'
        "[matcher]\nn_folds = 3\nn_estimators = 40\nmin_rounds = 10\nn_jobs = 1\n",
        encoding="utf-8")
    models = tmp_path / "models"
    subprocess.run([sys.executable, str(ROOT / "training" / "train.py"), str(config),
                    "--models-root", str(models)], check=True, cwd=ROOT,
                   capture_output=True, timeout=300)
    version = (models / "tiny" / "CURRENT").read_text().strip()
    manifest = verify_model(models / "tiny" / version)
    assert manifest["config"]["random_state"] == 7
    metrics = manifest["metrics"]
    assert metrics["schema"] == 1
    assert metrics["holdout"]["need->program"]["ndcg@10"] > 0.5
    assert 0 <= metrics["holdout"]["program->need"]["ece"] <= 1
    assert metrics["holdout_ndcg10"] == metrics["holdout"]["need->program"]["ndcg@10"]
    assert json.dumps(manifest)  # plain JSON
    assert load_model(models / "tiny").mode_ == "learned"
