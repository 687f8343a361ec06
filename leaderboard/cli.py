"""`covip-leaderboard`: summary, validate and build.

- `summary RUNS`: the markdown/JSON table of every run under RUNS (see summary.py);
- `validate PATH...`: check submissions; every submission is reported (valid, with what was checked, or rejected,
  with each problem named); exit 0 when all are valid, 2 when any is not;
- `build RESULTS... --out SITE`: validate, then write the static site from the valid submissions, with the rejected
  ones listed apart; exit 2 when any was rejected (no site at all when none is valid).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from covip.leaderboard.aggregate import leaderboard
from covip.leaderboard.benchmark import Benchmarks
from covip.leaderboard.rules import RULES
from covip.leaderboard.site import build_site
from covip.leaderboard.submission import Submission, load_submission
from covip.leaderboard.summary import write_summary
from covip.leaderboard.validate import Options, Report, validate
from covip.tasks.cli.judge import parse_options
from covip.tasks.results.run import find_runs

RULES_HELP = "Rules (each rejection names the file, task, record, field and rule):\n" + "\n".join(
    f"- {name}: {text}" for name, text in RULES.items()
)
EXIT_HELP = """Exit status: 0 when every submission is valid; 2 when any is rejected (every submission of the batch
is still checked and reported), none is found, or an option is wrong."""
VALIDATE_HELP = f"""Check leaderboard submissions: lmms-eval output directories (results JSON, --log_samples logs,
model card).

{RULES_HELP}

{EXIT_HELP}"""
BUILD_HELP = f"""Validate submissions (every check of `covip-leaderboard validate`), then write the static site from
the valid ones: index.html (one ranked table per group of like runs, the rejected submissions listed apart),
leaderboard.json, one page per model and per task with query-image thumbnails.

{EXIT_HELP} With a rejection, the site of the valid submissions is still written (and its path printed); with
none valid, or --out a directory that is not a leaderboard site, nothing is written."""


def _load(paths: list[str], card: str | None) -> list[Submission]:
    roots = find_runs([Path(p) for p in paths])
    if card and len(roots) != 1:
        raise ValueError(f"--card applies to one submission, but {len(roots)} were found: {', '.join(map(str, roots))}")
    return [load_submission(root, Path(card) if card else None) for root in roots]


def _report(reports: list[Report]) -> None:
    for report in reports:
        root = report.submission.root
        if report.valid:
            print(f"{root}: valid ({report.summary()})")
            continue
        print(f"{root}: REJECTED ({len(report.rejections)} problem(s)); checked: {report.summary()}", file=sys.stderr)
        for rejection in report.rejections:
            print(f"  {root}/{rejection}", file=sys.stderr)


def _checks(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--card", help="model card YAML (only with a single submission)")
    parser.add_argument(
        "--data", help="benchmark directory to check records and take query images from (default: where each run was)"
    )
    parser.add_argument(
        "--spot-check",
        type=int,
        default=0,
        metavar="N",
        help="re-ask N seeded questions of each LLM-judged submission's declared judge (default: no spot check)",
    )
    parser.add_argument("--spot-seed", type=int, default=0, help="seed of the spot check's draw (default: 0)")
    parser.add_argument(
        "--judge-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="how to reach the declared judge, e.g. base_url=http://127.0.0.1:8000/v1 or api_key_env=VAR "
        "(repeatable; VALUE is JSON when it parses)",
    )
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=0.9,
        help="share of spot-checked verdicts the judge must give again (default: %(default)s)",
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="covip-leaderboard", description="CoViP leaderboard tools.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summary", help="table of every run's scores under RUNS (writes summary.md/.json there)")
    s.add_argument("runs", help="directory holding lmms-eval output directories (with --log_samples)")
    raw = argparse.RawDescriptionHelpFormatter
    v = sub.add_parser(
        "validate",
        help="check submissions (lmms-eval output directories); exit 0 valid, 2 rejected",
        description=VALIDATE_HELP,
        formatter_class=raw,
    )
    v.add_argument("paths", nargs="+", help="submission directories, or directories holding several")
    _checks(v)
    b = sub.add_parser(
        "build", help="validate submissions and write the static site", description=BUILD_HELP, formatter_class=raw
    )
    b.add_argument("paths", nargs="+", help="submission directories, or directories holding several")
    b.add_argument("--out", required=True, help="site directory (created; a previous site there is replaced)")
    _checks(b)
    args = p.parse_args(argv)
    try:
        if args.command == "summary":
            print(write_summary(Path(args.runs)))
            print(f"wrote {Path(args.runs) / 'summary.md'} and {Path(args.runs) / 'summary.json'}")
            return 0
        subs = _load(args.paths, args.card)
        options = Options(
            data_dir=Path(args.data) if args.data else None,
            spot_check=args.spot_check,
            spot_seed=args.spot_seed,
            judge_options=parse_options(args.judge_option, None),
            min_agreement=args.min_agreement,
        )
    except (FileNotFoundError, ValueError) as exc:  # a RunError (summary) is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reports = validate(subs, options)
    _report(reports)
    status = 0 if all(r.valid for r in reports) else 2
    if args.command == "validate" or not any(r.valid for r in reports):
        return status
    try:
        index = build_site(leaderboard(reports), reports, Path(args.out), Benchmarks(options.data_dir))
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"site: {index.resolve()}")
    return status


def entry() -> None:
    sys.exit(main())
