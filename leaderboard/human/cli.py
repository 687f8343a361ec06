"""`covip-human serve RUN RUN... --db FILE` (the rating app) and `covip-human report FILE` (what raters said)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from covip.leaderboard.compare import NotComparable, read_runs
from covip.leaderboard.human.report import Settings, report, to_markdown
from covip.leaderboard.human.store import Store, StudyMismatch
from covip.leaderboard.human.study import build_study
from covip.leaderboard.pages import json_safe, page, render, write_assets
from covip.leaderboard.paired_stats import RESAMPLES

REPORT_FILE = "human_report.json"
SERVE_HELP = """Serve the rating app over two or more runs of the same captioning tasks on the same samples (checked
as `covip-leaderboard compare` checks them; --across-judges allows runs judged by different judges). An item is one
sample of a main captioning task and one pair of systems; raters see the context pictures with their dialogues, the
new image and the two captions (left/right drawn per rater and item, and recorded), and choose left, tie or right on
context awareness and on faithfulness to the new image. Every rating is written to the SQLite file --db at once;
restart the server with the same arguments and each rater continues where they stopped.

The pictures come from the runs' benchmark (where they were made, or --data DIR with the same fingerprint).
Binds to 127.0.0.1; --port 0 takes a free port. The URL is printed on the first line."""
REPORT_HELP = f"""Report a study: per pair of systems and criterion, win/tie/loss shares with 95% intervals (bootstrap
clustered by item), Fleiss' kappa over the items several raters rated, and agreement with the LLM judge (context
awareness vs the judge's per-sample Acc+, faithfulness vs Acc−). Prints a markdown table; with --out DIR also writes
DIR/{REPORT_FILE} and DIR/index.html (give the JSON to `covip-leaderboard build --human` to show it on the site)."""


def serve(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from covip.leaderboard.human.app import create_app

    try:
        if len(args.runs) < 2:
            raise ValueError("a study needs at least two runs")
        study = build_study(
            read_runs([Path(r) for r in args.runs]),
            Path(args.data) if args.data else None,
            args.items,
            args.seed,
            args.across_judges,
        )
        store = Store(Path(args.db))
        store.open_study(study.definition(), study.fingerprint)
    except (NotComparable, StudyMismatch, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = make_server(args.host, args.port, create_app(study, store), threaded=True)
    print(f"covip-human: http://{args.host}:{server.server_port}/", flush=True)
    labels = ", ".join(s.label for s in study.systems)
    print(f"{len(study.items)} items over {labels}; ratings in {Path(args.db).resolve()}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def report_command(args: argparse.Namespace) -> int:
    store = Store(Path(args.db))
    try:
        if not store.path.is_file():
            raise FileNotFoundError(f"{store.path}: no such study database")
        if args.resamples < 100:
            raise ValueError(f"--resamples {args.resamples}: at least 100 are needed for a 95% interval")
        data = report(store.definition(), store.ratings(), Settings(args.resamples, args.seed))
    except (StudyMismatch, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(to_markdown(data), end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_assets(out)
        (out / REPORT_FILE).write_text(json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n", "utf-8")
        body = render("human.html", human=data, standalone=True)
        (out / "index.html").write_text(page("CoViP human evaluation", body, 0), encoding="utf-8")
        print(f"wrote {out / REPORT_FILE} and {out / 'index.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="covip-human", description="The paper's human evaluation, done right.")
    sub = parser.add_subparsers(dest="command", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    s = sub.add_parser("serve", help="serve the rating app", description=SERVE_HELP, formatter_class=raw)
    s.add_argument("runs", nargs="+", help="two or more run directories (lmms_eval --output_path, with --log_samples)")
    s.add_argument("--db", required=True, help="the study's SQLite file (created; reused to resume)")
    s.add_argument("--data", help="benchmark directory of the pictures and dialogues (default: where the runs were)")
    s.add_argument(
        "--items", type=int, help="rate this many items, the same seeded draw for every rater (default: all)"
    )
    s.add_argument("--seed", type=int, default=0, help="seed of the draw, orders and sides (default: %(default)s)")
    s.add_argument("--across-judges", action="store_true", help="allow runs judged by different judges")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    s.add_argument("--port", type=int, default=8765, help="port (default: %(default)s; 0: a free one)")
    r = sub.add_parser("report", help="report a study", description=REPORT_HELP, formatter_class=raw)
    r.add_argument("db", help="the study's SQLite file")
    r.add_argument("--out", help="directory for the report's JSON and page")
    r.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples (default: %(default)s)")
    r.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    args = parser.parse_args(argv)
    return serve(args) if args.command == "serve" else report_command(args)


def entry() -> None:
    sys.exit(main())
