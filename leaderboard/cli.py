"""`covip-leaderboard`: summary, validate, build, compare and compare-judges.

- `summary RUNS`: the markdown/JSON table of every run under RUNS (see summary.py);
- `validate PATH...`: check submissions; every submission is reported (valid, with what was checked, or rejected,
  with each problem named); exit 0 when all are valid, 2 when any is not;
- `build RESULTS... --out SITE`: validate, then write the static site from the valid submissions, with the rejected
  ones listed apart; exit 2 when any was rejected (no site at all when none is valid);
- `compare RUN RUN... --out DIR`: paired statistics and side-by-side pages of runs of the same tasks on the same
  samples (see compare.py); exit 2 when they are not alike (each difference named);
- `compare-judges RUN --a JUDGE --b JUDGE --out DIR`: the same for two judges of one run's captions, with their
  agreement and Cohen's kappa (see judge_agreement.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from covip.leaderboard.aggregate import leaderboard
from covip.leaderboard.benchmark import Benchmarks
from covip.leaderboard.compare import NotComparable, Settings, compare, read_runs, run_sides
from covip.leaderboard.compare_site import prepare_out, write_comparison
from covip.leaderboard.human.report import read_human_report
from covip.leaderboard.judge_agreement import RUN_VERDICTS, agreement_rows, judge_sides
from covip.leaderboard.pages import fmt, interval, pvalue, signed
from covip.leaderboard.paired_stats import RESAMPLES
from covip.leaderboard.repic_data import RepicSets
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
the valid ones: index.html (one ranked table per group of like runs, the RePIC tasks' tables apart, the rejected
submissions listed apart), leaderboard.json, one page per model and per task with query-image thumbnails.

{EXIT_HELP} With a rejection, the site of the valid submissions is still written (and its path printed); with
none valid, or --out a directory that is not a leaderboard site, nothing is written."""
COMPARE_HELP = """Compare two or more runs of the same captioning tasks on the same samples: for every pair, the
difference in Acc+, Acc− and recognition F1 with a 95% interval from a paired bootstrap clustered by sample, and an
exact McNemar test on the per-question verdicts, per bucket and overall (main tasks and each control); and a
side-by-side page per task (pictures, every run's caption, each question's verdicts, a filter to the disagreements).
Writes DIR/index.html, DIR/comparison.json and DIR/<task>.html.

The runs must hold the same captioning tasks with the same data fingerprint and the same judge (each task's recorded
identity); otherwise nothing is written and each difference is named. --across-judges compares runs judged by
different judges on purpose (the page says so). Other task families are listed as not compared.

Exit status: 0 written; 2 the runs are not alike, a run cannot be read, or an option is wrong."""
COMPARE_JUDGES_HELP = """Compare two judges of one run's captions: how often they give the same letter and the same
right/wrong verdict, with Cohen's kappa, per control and question type (positive questions make Acc+, negative ones
Acc−); and the difference the judge makes to Acc+ and Acc− (paired bootstrap interval, exact McNemar test), per bucket
and overall, with the side-by-side pages. Writes DIR/index.html, DIR/comparison.json and DIR/<task>.html.

Each JUDGE is `run` (the verdicts the run logged) or a directory written by `covip-judge score RUN --judge ...`
(RUN/covip-judge/<judge id>/). Its records must be the run's samples with the run's captions and questions.

Exit status: 0 written; 2 the judges did not judge the same captions, a file cannot be read, or an option is wrong."""


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
        "--repic-data",
        help="RePIC directory to check RePIC records and take their pictures from (default: where each run was)",
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


def _statistics(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    parser.add_argument("--data", help="benchmark directory to take the pictures from (default: where the run was)")


RUNS_INTRO = (
    "Runs of the same captioning tasks on the same samples, compared pair by pair with paired statistics, and side by "
    "side sample by sample."
)
JUDGES_INTRO = (
    "One run's captions judged by two judges: how often they agree, and how much the judge changes Acc+ and Acc− on "
    "the same captions (B − A). Recognition F1 does not depend on the judge."
)


def _print_comparison(data: dict, index: Path) -> None:
    for note in data["notes"]:
        print(f"note: {note}")
    for row in data.get("agreement", []):
        verdicts = row["verdicts_agree"]
        agree = f"{100 * verdicts:.1f}%" if verdicts is not None else "–"
        kappa = fmt(row["verdicts_kappa"], 3)
        print(f"{row['control']:<6} {row['questions']:<28} n {row['n']:<6} same verdict {agree}, kappa {kappa}")
    for pair in data["pairs"]:
        for row in pair["rows"]:
            if row["bucket"] != "overall" or row["control"] != "none":
                continue
            parts = []
            for metric, name, digits in (("acc_pos", "Acc+", 1), ("acc_neg", "Acc-", 1), ("recognition_f1", "F1", 2)):
                if metric in row:
                    d = row[metric]
                    parts.append(f"{name} {signed(d['diff'], digits)} {interval(d['ci95'], digits, sign=True)}")
            tests = f"McNemar {pvalue(row['mcnemar_pos']['p'])} (Acc+), {pvalue(row['mcnemar_neg']['p'])} (Acc-)"
            print(f"{pair['b']} - {pair['a']}, overall ({row['samples']} samples): {'; '.join(parts)}; {tests}")
    print(f"comparison: {index.resolve()}")


def compare_command(args: argparse.Namespace) -> int:
    """`compare` (runs) and `compare-judges` (two judges of one run): check, compute, write the pages."""
    agreement = None
    try:
        if args.resamples < 100:
            raise ValueError(f"--resamples {args.resamples}: at least 100 are needed for a 95% interval")
        if args.command == "compare":
            if len(args.runs) < 2:
                raise ValueError("compare needs at least two runs")
            sides, notes = run_sides(read_runs([Path(r) for r in args.runs]), args.across_judges)
            data = compare(sides, Settings(args.resamples, args.seed, notes=notes))
            title, intro = "Comparison of " + ", ".join(s.label for s in sides), RUNS_INTRO
        else:
            [(_, run)] = read_runs([Path(args.run)])
            sides = judge_sides(run, args.a, args.b)
            data = compare(sides, Settings(args.resamples, args.seed, metrics=("acc_pos", "acc_neg")), kind="judges")
            agreement = data["agreement"] = agreement_rows(sides)
            title, intro = f"Two judges of {run.root}", JUDGES_INTRO
        out = Path(args.out)
        prepare_out(out)
    except (NotComparable, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    benchmarks = Benchmarks(Path(args.data) if args.data else None)
    index = write_comparison(data, sides, out, benchmarks, title=title, intro=intro, agreement=agreement)
    _print_comparison(data, index)
    return 0


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
    b.add_argument("--human", metavar="REPORT", help="a `covip-human report --out` JSON file to show on the site")
    _checks(b)
    c = sub.add_parser(
        "compare",
        help="paired statistics and side-by-side pages of runs",
        description=COMPARE_HELP,
        formatter_class=raw,
    )
    c.add_argument("runs", nargs="+", help="two or more run directories (lmms_eval --output_path, with --log_samples)")
    c.add_argument("--out", required=True, help="output directory (created; a previous comparison there is replaced)")
    c.add_argument("--across-judges", action="store_true", help="compare runs judged by different judges on purpose")
    _statistics(c)
    j = sub.add_parser(
        "compare-judges",
        help="two judges of one run's captions: agreement, kappa and the difference in scores",
        description=COMPARE_JUDGES_HELP,
        formatter_class=raw,
    )
    j.add_argument("run", help="one run directory (lmms_eval --output_path, with --log_samples)")
    j.add_argument(
        "--a",
        default=RUN_VERDICTS,
        help="judge A: `run` (the run's own verdicts, the default) or a covip-judge score output directory",
    )
    j.add_argument("--b", required=True, help="judge B: `run` or a covip-judge score output directory")
    j.add_argument("--out", required=True, help="output directory (created; a previous comparison there is replaced)")
    _statistics(j)
    args = p.parse_args(argv)
    if args.command in ("compare", "compare-judges"):
        return compare_command(args)
    try:
        if args.command == "summary":
            print(write_summary(Path(args.runs)))
            print(f"wrote {Path(args.runs) / 'summary.md'} and {Path(args.runs) / 'summary.json'}")
            return 0
        subs = _load(args.paths, args.card)
        options = Options(
            data_dir=Path(args.data) if args.data else None,
            repic_dir=Path(args.repic_data) if args.repic_data else None,
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
        data = leaderboard(reports)
        if args.human:
            data["human"] = read_human_report(Path(args.human))
        index = build_site(data, reports, Path(args.out), Benchmarks(options.data_dir), RepicSets(options.repic_dir))
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"site: {index.resolve()}")
    return status


def entry() -> None:
    sys.exit(main())
