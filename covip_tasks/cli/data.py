"""`covip-data`: build, validate and export CoViP datasets."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from covip.tasks.data.canonical import (
    MANIFEST,
    SPLITS,
    TASKS,
    load_caption_dataset,
    load_diagnostic_dataset,
    task_file,
    verify_manifest,
)
from covip.tasks.data.schema import DataError
from covip.tasks.data.sources import default_data_dir


def _build(args: argparse.Namespace) -> int:
    from covip.tasks.builder.build import BuildConfig, build
    from covip.tasks.builder.difficulty import Difficulty

    config = BuildConfig(
        out=Path(args.out),
        seed=args.seed,
        per_bucket=args.per_bucket,
        split=args.split,
        buckets=tuple(int(b) for b in args.buckets.split(",")),
        force=args.force,
        tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
        diag_samples=args.diag_samples,
        trigger=args.trigger,
        workers=args.workers,
        difficulty=Difficulty.parse(args.difficulty),
    )
    for path in build(config):
        print(f"wrote {path}")
    print(f"dataset card: {Path(args.out) / 'README.md'}")
    return 0


def _load_count(root: Path, task: str, split: str) -> int:
    if task == "caption":
        return len(load_caption_dataset(root, split).samples)
    return len(load_diagnostic_dataset(root, task, split)[0])


def _validate(args: argparse.Namespace) -> int:
    """Check every task file of the chosen splits, then the manifest; report all problems, not the first."""
    root = Path(args.dir)
    files = [
        (task, split) for split in args.split or SPLITS for task in TASKS if (root / task_file(task, split)).is_file()
    ]
    if not files:
        splits = ", ".join(args.split or SPLITS)
        print(
            f"INVALID: {root}: no dataset file of split(s) {splits} ({', '.join(TASKS)}); see `covip-data build`",
            file=sys.stderr,
        )
        return 2
    invalid = False
    for task, split in files:
        try:
            print(f"OK: {_load_count(root, task, split)} samples in {root / task_file(task, split)}")
        except DataError as exc:
            print(f"INVALID: {exc}", file=sys.stderr)
            invalid = True
    problem = _manifest_problem(root / MANIFEST)
    if problem:
        print(f"INVALID: {root / MANIFEST}: {problem}", file=sys.stderr)
    return 2 if invalid or problem else 0


def _manifest_problem(manifest: Path) -> str | None:
    """What is wrong with the manifest's sha256 list (None when intact or absent: reference data has none)."""
    if not manifest.is_file():
        return None
    try:
        changed = verify_manifest(manifest.parent)
    except (ValueError, OSError) as exc:
        return f"unreadable: {exc}"
    return f"sha256 mismatch or missing file: {', '.join(changed[:20])}" if changed else None


def _number(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.3f}"


def lookalike_table(root: Path, split: str) -> str:
    """The markdown table of `covip-data stats`: how alike each bucket's distractors are to its positives."""
    from PIL import Image

    from covip.tasks.builder.similarity import lookalike_report

    data = load_caption_dataset(root, split, open_images=False)
    rows = lookalike_report(data.samples, lambda rel: Image.open(data.image_path(rel)))
    lines = [
        "| bucket | negative concepts | similarity to the nearest positive | same, to another sample's positives |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r.bucket}c | {r.negatives} | {r.to_positive:.3f} | {_number(r.to_random)} |" for r in rows]
    return "\n".join(lines)


def _stats(args: argparse.Namespace) -> int:
    print(lookalike_table(Path(args.dir), args.split))
    print(
        "\nCosine similarity of the builder's picture embedding (covip_tasks/builder/similarity.py). Distractors "
        "picked as look-alikes sit well above the second column; drawn at random, at its level."
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from covip.tasks.formats.export import export_reference

    data = load_caption_dataset(Path(args.dir), args.split)
    export_reference(list(data.samples), data.root, Path(args.out))
    print(f"exported {len(data.samples)} samples in the reference format to {args.out}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="covip-data", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser(
        "build",
        help="build the offline synthetic benchmark (deterministic)",
        description="Build one split of the offline benchmark: procedurally drawn concepts, "
        "templated 6-turn dialogues and 3 MCQAs per concept; same seed, byte-identical files.",
    )
    b.add_argument(
        "--out",
        default=str(default_data_dir()),
        help="output directory (default: %(default)s, where the covip_* tasks look by default)",
    )
    b.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    b.add_argument(
        "--difficulty",
        default="paper",
        help="easy, paper, hard, or a number in [0, 1]: how alike the distractors are and how much the query "
        "view departs from the reference views; easy reproduces builder version 1 (default: %(default)s)",
    )
    b.add_argument(
        "--per-bucket", type=int, default=25, help="samples per bucket of 1-4 positives (default: %(default)s)"
    )
    b.add_argument("--split", choices=SPLITS, default="test", help="split to build (default: %(default)s)")
    b.add_argument("--buckets", default="1,2,3,4", help="comma-separated buckets to build (default: %(default)s)")
    b.add_argument(
        "--tasks",
        default="caption,lsd,lar,itr",
        help="comma-separated tasks to build: caption, lsd, lar, itr (default: %(default)s)",
    )
    b.add_argument("--diag-samples", type=int, default=50, help="samples per diagnostic task (default: %(default)s)")
    b.add_argument("--trigger", default="SKS", help="ITR trigger word planted in a dialogue (default: %(default)s)")
    b.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="parallel processes; the output does not depend on it (default: %(default)s)",
    )
    b.add_argument("--force", action="store_true", help="rebuild the split's tasks if they already exist")
    b.set_defaults(func=_build)

    v = sub.add_parser(
        "validate",
        help="check a dataset; exit 0 if valid, 2 if not",
        description="Validate every record of every task file (caption, lsd, lar, itr) of a canonical dataset "
        "directory, then its manifest; each problem names the file, the record and the field. "
        "Exit status 0 valid, 2 invalid.",
    )
    v.add_argument("dir", help="dataset directory")
    v.add_argument(
        "--split", choices=SPLITS, action="append", help="split to check; repeatable (default: every split present)"
    )
    v.set_defaults(func=_validate)

    st = sub.add_parser(
        "stats",
        help="how alike the distractors are to their positives",
        description="Per bucket, the mean similarity (the builder's own picture embedding) of each negative "
        "concept to the nearest positive of its sample, against the positives of another sample of the bucket.",
    )
    st.add_argument("dir", help="canonical dataset directory")
    st.add_argument("--split", choices=SPLITS, default="test")
    st.set_defaults(func=_stats)

    e = sub.add_parser(
        "export",
        help="write a dataset in another format",
        description="Export a canonical dataset; --format reference writes the paper's test-set "
        "files (meta_CoViP_testset_cleaned.jsonl, QAS_GT_test.json, images/).",
    )
    e.add_argument("dir", help="canonical dataset directory")
    e.add_argument("--format", choices=["reference"], required=True)
    e.add_argument("--out", required=True, help="output directory")
    e.add_argument("--split", choices=SPLITS, default="test")
    e.set_defaults(func=_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (DataError, FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
