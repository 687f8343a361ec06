"""`covip-leaderboard`: summary, validate and build.

- `summary RUNS`: the markdown/JSON table of every model under RUNS (see summary.py);
- `validate PATH...`: check submissions; exit 0 when all are valid, 2 when any is not, each
  problem printed with its file and field;
- `build RESULTS... --out SITE`: validate, then write the static site; an invalid submission
  stops the build (exit 2) rather than being left out silently.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from covip.leaderboard import summary
from covip.leaderboard.aggregate import leaderboard
from covip.leaderboard.site import build_site
from covip.leaderboard.submission import Submission, discover, load_submission
from covip.leaderboard.validate import RULES, is_valid, validate

VALIDATE_HELP = f"""Check leaderboard submissions: lmms-eval output directories (results JSON, --log_samples
logs, model card).

{RULES}

Exit status: 0 when every submission is valid, 2 when any is invalid (each problem printed with
its file and field) or none is found."""
BUILD_HELP = """Validate submissions (every check of `covip-leaderboard validate`), then write the static site:
index.html, leaderboard.json, one page per model and per task with query-image thumbnails.

Exit status: 0 when the site is written (its index.html printed), 2 when a submission is invalid
(nothing is written), none is found, or --out is a directory that is not a leaderboard site."""


def _load(paths: list[str], card: str | None) -> list[Submission]:
    roots = discover([Path(p) for p in paths])
    if card and len(roots) != 1:
        raise ValueError(f"--card applies to one submission, but {len(roots)} were found: {', '.join(map(str, roots))}")
    return [load_submission(root, Path(card) if card else None) for root in roots]


def _report(subs: list[Submission]) -> bool:
    report = validate(subs)
    for root, problems in report.items():
        status = "valid" if not problems else f"INVALID ({len(problems)} problem(s))"
        print(f"{root}: {status}", file=sys.stderr if problems else sys.stdout)
        for problem in problems:
            print(f"  {root}/{problem}", file=sys.stderr)
    return is_valid(report)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="covip-leaderboard", description="CoViP leaderboard tools.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="table of every model's scores under RUNS (writes summary.md/.json there)")
    s.add_argument("runs", help="directory holding lmms-eval output directories (with --log_samples)")
    raw = argparse.RawDescriptionHelpFormatter
    v = sub.add_parser(
        "validate",
        help="check submissions (lmms-eval output directories); exit 0 valid, 2 invalid",
        description=VALIDATE_HELP,
        formatter_class=raw,
    )
    v.add_argument("paths", nargs="+", help="submission directories, or directories holding several")
    v.add_argument("--card", help="model card YAML (only with a single submission)")
    b = sub.add_parser(
        "build", help="validate submissions and write the static site", description=BUILD_HELP, formatter_class=raw
    )
    b.add_argument("results", nargs="+", help="submission directories, or directories holding several")
    b.add_argument("--out", required=True, help="site directory (created; a previous site there is replaced)")
    b.add_argument("--card", help="model card YAML (only with a single submission)")
    b.add_argument("--data", help="benchmark directory for query images (default: the location each run recorded)")
    args = p.parse_args(argv)
    if args.command == "summary":
        return summary.main(["summary", args.runs])
    try:
        subs = _load(args.paths if args.command == "validate" else args.results, args.card)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not _report(subs):
        return 2
    if args.command == "validate":
        return 0
    try:
        index = build_site(leaderboard(subs), subs, Path(args.out), Path(args.data) if args.data else None)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"site: {index.resolve()}")
    return 0


def entry() -> None:
    sys.exit(main())
