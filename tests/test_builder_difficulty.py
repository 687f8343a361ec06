"""The difficulty knob: `easy` is builder version 1 byte for byte; above it, distractors are look-alikes picked
by the builder's similarity measure, query nuisances keep identity features, and the baselines spread.

Why: a benchmark whose colour-histogram baseline ties the oracle cannot tell models apart, and a harder one is
only worth having if it stays answerable (identity survives the nuisances) and reproducible (same seed, same
bytes; anyone who pinned the easy data keeps it).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covip.model_adapters import structure_match, visual_match
from covip.tasks.builder import concepts, identities, images, similarity
from covip.tasks.builder.build import BuildConfig, build
from covip.tasks.builder.difficulty import Difficulty
from covip.tasks.cli import data as data_cli
from covip.tasks.data.canonical import load_caption_dataset

EASY_HASHES = Path(__file__).parent / "data" / "builder_easy_sha256.json"


def build_at(out: Path, difficulty: str, **kw) -> Path:
    config = {"seed": 3, "per_bucket": 1, "tasks": ("caption",), "difficulty": Difficulty.parse(difficulty), **kw}
    build(BuildConfig(out=out, **config))
    return out


def test_easy_reproduces_builder_version_1_byte_for_byte(tmp_path):
    """The hashes were recorded from builder version 1 (before the knob existed) with the same command."""
    recorded = json.loads(EASY_HASHES.read_text())
    versions = {name: metadata.version(name) for name in recorded["versions"]}
    assert versions == recorded["versions"], f"the recorded bytes were made with {recorded['versions']}"
    out = build_at(tmp_path / "easy", "easy", tasks=("caption", "lsd", "lar", "itr"), diag_samples=2)
    written = {rel: hashlib.sha256((out / rel).read_bytes()).hexdigest() for rel in recorded["files"]}
    assert written == recorded["files"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == set(recorded["files"]) | {"README.md"}


def test_number_zero_is_easy_and_other_levels_differ(tmp_path):
    easy = build_at(tmp_path / "easy", "easy")
    zero = build_at(tmp_path / "zero", "0")
    paper = build_at(tmp_path / "paper", "paper")
    assert (easy / "caption_test.jsonl").read_bytes() == (zero / "caption_test.jsonl").read_bytes()
    assert (easy / "caption_test.jsonl").read_bytes() != (paper / "caption_test.jsonl").read_bytes()


def test_difficulty_is_recorded_in_manifest_and_card(tmp_path):
    out = build_at(tmp_path / "d", "0.3")
    split = json.loads((out / "manifest.json").read_text())["splits"]["test"]
    assert split["difficulty"] == {"preset": None, "level": 0.3}
    assert "| test | 3 | 0.3 | 1 |" in (out / "README.md").read_text()
    build_at(out, "hard", split="train")
    card = (out / "README.md").read_text()
    assert "| test | 3 | 0.3 | 1 |" in card and "| train | 3 | hard (1) | 1 |" in card


def test_difficulty_parsing_and_cli_errors(tmp_path):
    assert Difficulty.parse("paper") == Difficulty(0.5, "paper")
    assert Difficulty.parse("0.25") == Difficulty(0.25)
    assert Difficulty.parse("easy").label == "easy (0)" and not Difficulty.parse("easy").lookalikes
    for bad in ("medium", "1.5", "-0.1", "nan"):
        with pytest.raises(ValueError, match="difficulty"):
            Difficulty.parse(bad)
    proc = subprocess.run(
        [sys.executable, "-m", "covip.tasks.cli.data", "build", "--out", str(tmp_path), "--difficulty", "medium"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "difficulty must be one of easy, paper, hard" in proc.stderr


def test_the_default_is_paper(tmp_path):
    assert BuildConfig(out=tmp_path).difficulty == Difficulty(0.5, "paper")
    assert data_cli.parser().parse_args(["build"]).difficulty == "paper"


def _report(root: Path) -> list[similarity.LookalikeRow]:
    data = load_caption_dataset(root, open_images=False)
    return similarity.lookalike_report(data.samples, lambda rel: Image.open(data.image_path(rel)))


def test_distractors_are_closer_to_their_positive_than_random_concepts(tmp_path):
    paper = _report(build_at(tmp_path / "paper", "paper", per_bucket=4, buckets=(1, 2)))
    easy = _report(build_at(tmp_path / "easy", "easy", per_bucket=4, buckets=(1, 2)))
    for row in paper:
        assert row.to_positive - row.to_random >= 0.15, row
    for row in easy:  # drawn at random: no closer to their positives than to another sample's
        assert abs(row.to_positive - row.to_random) < 0.1, row


def test_pick_lookalikes_ranks_by_the_given_embedding():
    pictures = [Image.new("RGB", (4, 4), (v, v, v)) for v in (100, 10, 90, 200)]

    def grey(image: Image.Image) -> np.ndarray:  # a stand-in for an image encoder such as CLIP
        v = float(np.asarray(image)[0, 0, 0]) / 255
        return np.array([v, 1 - v])

    assert similarity.pick_lookalikes(pictures[0], pictures[1:], 2, embed=grey) == [1, 0]  # 90, then 10
    with pytest.raises(ValueError, match="cannot pick 4"):
        similarity.pick_lookalikes(pictures[0], pictures[1:], 4, embed=grey)


def test_lookalikes_share_the_body_colour_and_differ_in_the_asked_features():
    rng = np.random.default_rng(4)
    for _ in range(30):
        base = identities.draw_identities(rng, 1)[0]
        for changes in (1, 2, 3):
            other = identities.lookalike(rng, base, changes)
            assert other.palette[0] == base.palette[0]
            assert other != base
    with pytest.raises(ValueError, match="changes"):
        identities.lookalike(rng, base, 0)


@pytest.mark.parametrize("level", ["paper", "hard"])
def test_query_nuisances_keep_identity_features(level):
    """The builder's own descriptor of each concept's visible pixels in a query made with the level's nuisances
    still matches that concept's reference view best, among mutually distinct (easy) concepts."""
    difficulty = Difficulty.parse(level)
    rng = np.random.default_rng(21)
    hits = total = 0
    for bucket in (1, 2, 3, 4) * 5:
        looks = identities.draw_identities(rng, 3 * bucket)
        refs = [similarity.describe(images.render_view(x, rng, nuisances=difficulty.reference)) for x in looks]
        scene = images.render_scene(looks[:bucket], rng, nuisances=difficulty.query)
        for concept, mask in enumerate(scene.visible):
            crop = similarity.describe(scene.image, mask)
            hits += int(np.argmax([similarity.similarity(crop, ref) for ref in refs]) == concept)
            total += 1
    assert hits / total >= 0.9, f"{hits}/{total}"


def test_query_masks_and_decoys():
    rng = np.random.default_rng(8)
    looks = identities.draw_identities(rng, 2)
    decoy = identities.lookalike(rng, looks[0], 2)
    hard = Difficulty.parse("hard").query
    scene = images.render_scene(looks, rng, nuisances=hard, decoys=(decoy,))
    assert len(scene.visible) == 2 and scene.image.size == (512, 384)
    for mask in scene.visible:
        assert mask.shape == (384, 512) and mask.sum() > 500
    assert not (scene.visible[0] & scene.visible[1]).any()


def _recall(matcher, root: Path) -> float:
    data = load_caption_dataset(root, open_images=False)
    found = total = 0
    for s in data.samples:
        context = [Image.open(data.image_path(c.image)) for c in s.concepts]
        found += len(set(matcher(context, Image.open(data.image_path(s.query_image)))) & set(s.positives))
        total += len(s.positives)
    return found / total


def test_baselines_spread_on_a_small_paper_build(tmp_path):
    """Recall of the positives (what Acc+ follows): the structure matcher well above the colour histogram, which
    look-alikes bring down to about chance; on the easy level the colour histogram finds nearly everything."""
    paper = build_at(tmp_path / "paper", "paper", per_bucket=6, seed=11)
    structure, colour = _recall(structure_match.match_concepts, paper), _recall(visual_match.match_concepts, paper)
    assert colour <= 0.6 and structure >= colour + 0.15, (structure, colour)
    easy = build_at(tmp_path / "easy", "easy", per_bucket=2, seed=11)
    assert _recall(visual_match.match_concepts, easy) >= 0.9


def test_lookalike_concepts_refuse_the_easy_level():
    with pytest.raises(ValueError, match="easy level"):
        concepts.lookalike_concepts(np.random.default_rng(0), 1, 2, Difficulty.parse("easy"))


def test_stats_command_prints_the_similarity_table(tmp_path):
    out = build_at(tmp_path / "s", "paper", per_bucket=2, buckets=(1, 3))
    proc = subprocess.run(
        [sys.executable, "-m", "covip.tasks.cli.data", "stats", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("| 1c") or line.startswith("| 3c")]
    assert [line.split(" | ")[1] for line in lines] == ["4", "12"]  # 2 samples, 2 and 6 negatives each


@pytest.mark.integration
def test_baseline_spread_script_smoke(tmp_path):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "baseline_spread.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke", "--out", str(tmp_path), "--models", "covip_oracle,covip_structure"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| covip_oracle | 100.0 / 100.0 / 1.00 |" in proc.stdout and "| covip_structure |" in proc.stdout
    rows = json.loads((tmp_path / "spread.json").read_text())["rows"]
    assert [r["model"] for r in rows] == ["covip_oracle", "covip_structure"]


@pytest.mark.integration
def test_build_time_script_smoke():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "build_time.py"
    proc = subprocess.run([sys.executable, str(script), "--smoke"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "same bytes in every build of a level" in proc.stdout and "paper / easy:" in proc.stdout
