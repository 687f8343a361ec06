"""`covip-judge repic FILE [FILE ...] --concepts {1,2,4} --database DB`: score RePIC caption files, no model needed.

Each file is a RePIC caption file (rows `[image_path, ["<key>", ...], caption, prompt]`, what RePIC's captioning
scripts write) scored on its own, as RePIC's evaluation scripts score a file: its candidate pool is its own keys.
One JSON object per file and line: the `repic` preset's `precision`, `recall`, `f1` (unrounded percent), `slots`,
`correct`, `miss`, and the corrected metric's `name_precision`, `name_recall`, `name_f1`, `name_correct`,
`name_miss`. The corrected metric matches the display names the model was shown, which only the concept database
holds (`--database`); its images are not needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from covip.tasks.data.schema import DataError
from covip.tasks.repic.formats import CaptionRow, read_caption_file, read_database
from covip.tasks.repic.scoring import BUCKETS, name_score, repic_score


def file_scores(path: Path, rows: list[CaptionRow], bucket: int, names: dict[str, str]) -> dict[str, Any]:
    pairs = [(row.keys, row.caption) for row in rows]
    keys, shown = repic_score(pairs, bucket), name_score(pairs, names, bucket)
    return {
        "file": str(path),
        "precision": keys.precision,
        "recall": keys.recall,
        "f1": keys.f1,
        "slots": keys.slots,
        "correct": keys.correct,
        "miss": keys.miss,
        "name_precision": shown.precision,
        "name_recall": shown.recall,
        "name_f1": shown.f1,
        "name_correct": shown.correct,
        "name_miss": shown.miss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="covip-judge repic",
        description="Score RePIC caption files (JSON lists of [image_path, [keys], caption, prompt]) by name "
        "precision / recall / F1: RePIC's own rules (the repic preset) and the corrected name matching.",
        epilog="exit status: 0 done; 2 bad input (each problem names the file, row and field).",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="RePIC caption file(s), scored one by one")
    parser.add_argument("--concepts", type=int, choices=BUCKETS, required=True, help="concepts per image")
    parser.add_argument(
        "--database",
        type=Path,
        required=True,
        help="the RePIC concept database the captions were made with (database_mod.json): the display names",
    )
    args = parser.parse_args(argv)
    try:
        names = read_database(args.database).names()
        scored, problems = [], []
        for path in args.files:
            try:
                scored.append(file_scores(path, read_caption_file(path, args.concepts, names), args.concepts, names))
            except DataError as exc:
                problems += exc.problems
        if problems:
            raise DataError(problems)
    except DataError as exc:
        print(f"covip-judge repic: error: {exc}", file=sys.stderr)
        return 2
    for scores in scored:
        print(json.dumps(scores))
    return 0
