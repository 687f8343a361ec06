"""The static leaderboard site: plain HTML files, one stylesheet, one small script, inline SVG charts.

Self-contained on purpose: it opens from disk or any static host, fetches nothing (a Content-Security-Policy meta
tag forbids every outside request; the page shell is `pages.page`), and reads fine without JavaScript (the script
only sorts tables and runs the sample filters). Every string that comes from a submission (model names, card fields,
captions, questions, problems) passes through `e()` before it is written here, or through Jinja2's autoescape in
the templates.

Layout: `index.html` (one section per cohort of like runs, each ranked on its own, then the RePIC tasks' own
tables (`templates/repic.html`), then a human study's report when given, then the rejected submissions),
`leaderboard.json` (the data the pages show), `assets/`, `models/<slug>.html` (model card, judge badge, checks, scores,
links to its cohort's comparison), `models/<slug>/<task>.html` (per-sample browsing: pictures, caption, verdicts,
legend, filters; for RePIC, each ground-truth concept's outcome), `compare/<cohort>/` (each cohort of two or more models
compared: `compare_site.py`) and `img/` (thumbnails of query images and context pictures).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

from covip.leaderboard import svg
from covip.leaderboard.aggregate import BUCKETS, CONTROLS, DIAGNOSTICS, MODES
from covip.leaderboard.benchmark import Benchmark, Benchmarks
from covip.leaderboard.compare_site import CohortComparison, cohort_comparison, task_file
from covip.leaderboard.images import record_pictures
from covip.leaderboard.pages import e, finite, fmt, json_safe, page, render, sort_value, write_assets
from covip.leaderboard.repic_data import RepicSets
from covip.leaderboard.validate import REPIC, Report
from covip.tasks.repic.dataset import RepicSet
from covip.tasks.repic.scoring import name_outcomes, repic_outcomes
from covip.tasks.results.records import CaptionRecord, DiagnosticRecord, RepicRecord
from covip.tasks.results.run import TaskRun
from covip.tasks.scoring import metrics

DATA_FILE = "leaderboard.json"
CARD_LABELS = {
    "parameters": "Parameters",
    "base_model": "Base model",
    "method": "Personalization method",
    "training_data": "Training data",
    "access": "Open weights or API",
    "date": "Date",
    "notes": "Notes",
}
DIAG_NAMES = {"lsd": "LSD", "lar": "LAR", "itr": "ITR"}
NOT_GIVEN = '<span class="muted">not given</span>'
DERIVED = '<span class="muted" title="not on the model card: read from the results\' config">(from the results)</span>'
RIGHT, WRONG = '<span class="ok">✓ right</span>', '<span class="bad">✗ wrong</span>'
REPORTED_BADGE = '<span class="badge reported" title="as published; not recomputed here">reported</span>'
SHOWN_PROBLEMS = 20  # per rejected submission on the index; all of them are in leaderboard.json


def td(value: Any, digits: int = 1, ci: Any = None) -> str:
    """A numeric cell whose `data-v` is what the table sorts on (empty for a missing value)."""
    sort = sort_value(value)
    interval = ""
    if ci and finite(ci[0]) and finite(ci[1]):
        interval = f' <span class="muted">[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]</span>'
    return f'<td data-v="{sort}">{fmt(value, digits)}{interval}</td>'


def td_text(text: str, html: str | None = None) -> str:
    return f'<td class="text" data-v="{e(text)}">{html if html is not None else e(text)}</td>'


def slug(model_id: str) -> str:
    """A file name for a model id (ids are untrusted text): safe characters plus a hash against collisions."""
    base = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")[:40] or "model"
    return f"{base}-{hashlib.sha256(model_id.encode()).hexdigest()[:8]}"


def judge_badge(judge: dict[str, Any]) -> str:
    backend = str(judge.get("backend") or "none")
    kind = "judge-rule" if backend == "rule" else "judge-llm"
    label = " · ".join(str(judge[k]) for k in ("backend", "model", "preset") if judge.get(k)) or "no judge"
    return f'<span class="badge {kind}" title="judge id: {e(judge.get("id") or "none")}">{e(label)}</span>'


def checks_text(entry: dict, short: bool = False) -> str:
    """How far the submission's verdicts and records were checked, in words (`short`: for a table cell)."""
    checks, backend = entry["checks"], entry["judge"].get("backend")
    spot = checks["spot_check"]
    if backend == "rule":
        judged = (
            f"re-judged ({checks['rejudged']} verdicts)" if short else f"re-judged: all {checks['rejudged']} verdicts"
        )
    elif spot is None:
        judged = "not spot-checked" if backend else "no judge"
    elif spot["reason"]:
        judged = "not spot-checked" if short else f"not spot-checked: {spot['reason']}"
    else:
        judged = f"spot-checked: {spot['agreed']} of {spot['asked'] - spot['failed']} agree"
        judged += "" if short else f" (seed {spot['seed']})"
    benchmark = checks["benchmark"]
    if short:
        benchmark = "checked" if benchmark == "checked" else "not checked"
    return f"{judged}; benchmark {benchmark}"


def _table(headers: list[str], bodies: list[str], kind: str = "sortable") -> str:
    head = "".join(f'<th scope="col">{h}</th>' for h in headers)
    return f'<div class="scroll"><table class="{kind}"><thead><tr>{head}</tr></thead>{"".join(bodies)}</table></div>'


def _body(rows: list[str], reported: list[str] | None = None) -> list[str]:
    bodies = [f"<tbody>{''.join(rows)}</tbody>"]
    if reported:
        bodies.append(f'<tbody class="reported">{"".join(reported)}</tbody>')
    return bodies


def _model_link(entry: dict, depth: int = 0) -> str:
    return f'<a href="{"../" * depth}models/{slug(entry["id"])}.html">{e(entry["name"])}</a>'


def _row(cells: list[str]) -> str:
    return "<tr>" + "".join(cells) + "</tr>"


def caption_table(models: list[dict], reported: dict | None) -> str:
    headers = ["#", "Model", "Judge", "Checks", "Score", "Acc+ [95% CI]", "Acc− [95% CI]"]
    headers += [f"{b} Acc{sign}" for b in BUCKETS for sign in ("+", "−")]
    headers += ["Recog. F1", "Judge invalid / failed", "Samples"]
    rows = []
    for m in models:
        c, o = m["caption"], m["caption"].get("overall", {})
        cells = [
            td(m.get("rank"), 0),
            td_text(m["name"], _model_link(m)),
            td_text(str(m["judge"].get("id")), judge_badge(m["judge"])),
            td_text(
                checks_text(m, short=True), f'<span title="{e(checks_text(m))}">{e(checks_text(m, short=True))}</span>'
            ),
            td(o.get("score")),
            td(o.get("acc_pos"), 1, o.get("acc_pos_ci95")),
            td(o.get("acc_neg"), 1, o.get("acc_neg_ci95")),
        ]
        cells += [td(c.get(b, {}).get(key)) for b in BUCKETS for key in ("acc_pos", "acc_neg")]
        failures = f"{o.get('judge_invalid', '–')} / {o.get('judge_error', '–')}"
        cells += [td(o.get("recognition_f1"), 2), td_text(failures), td(o.get("n"), 0)]
        rows.append(_row(cells))
    rep = []
    for r in reported["capeval_qas"]["rows"] if reported else []:
        judge = f'<span class="badge reported" title="{e(reported.get("note", ""))}">paper\'s judge</span>'
        cells = [td(None), td_text(r["model"], f"{e(r['model'])} {REPORTED_BADGE}"), td_text("paper's judge", judge)]
        cells += [td_text("as published"), td(None), td(None), td(None)]
        cells += [td(r.get(b, {}).get(key)) for b in BUCKETS for key in ("acc_pos", "acc_neg")]
        cells += [td(None), td_text("–"), td(None)]
        rep.append(_row(cells))
    return _table(headers, _body(rows, rep), "sortable ranked")


def controls_table(models: list[dict]) -> str:
    headers = ["#", "Model", "Acc+", "Acc+ blind", "Acc+ noctx", "Acc−", "Acc− blind", "Acc− noctx"]
    rows = []
    for m in models:
        o = m["caption"].get("overall", {})
        ctl = {c: m["controls"].get(c, {}).get("overall", {}) for c in CONTROLS}
        cells = [td(m.get("rank"), 0), td_text(m["name"], _model_link(m)), td(o.get("acc_pos"))]
        cells += [td(ctl[c].get("acc_pos")) for c in CONTROLS] + [td(o.get("acc_neg"))]
        cells += [td(ctl[c].get("acc_neg")) for c in CONTROLS]
        rows.append(_row(cells))
    return _table(headers, _body(rows))


def diagnostics_table(models: list[dict], reported: dict | None) -> str:
    headers = ["#", "Model"] + [f"{DIAG_NAMES[d]} {mode}" for d in DIAGNOSTICS for mode in MODES]
    rows = []
    for m in models:
        cells = [td(m.get("rank"), 0), td_text(m["name"], _model_link(m))]
        for d in DIAGNOSTICS:
            for mode in MODES:
                s = m["diagnostics"].get(d, {}).get(mode, {})
                cells.append(td(s.get("score"), 1, s.get("score_ci95")))
        rows.append(_row(cells))
    rep = []
    for r in reported["diagnostics"]["rows"] if reported else []:
        cells = [td(None), td_text(r["model"], f"{e(r['model'])} {REPORTED_BADGE}")]
        cells += [td(r.get(d, {}).get(mode)) for d in DIAGNOSTICS for mode in MODES]
        rep.append(_row(cells))
    return _table(headers, _body(rows, rep))


def slope_note(slope: dict) -> str:
    """Why a slope is not shown as a fitted line ("" when it is reliable)."""
    if slope.get("slope") is None or slope.get("reliable"):
        return slope.get("reason") or ""
    return f"unreliable: {slope['reason']}"


def slope_table(models: list[dict], reported: dict | None) -> str:
    headers = ["#", "Model", "Samples", "Mean recog. F1", "Slope m [95% CI]", "Intercept", "r", "Std. error", "Note"]
    rows = []
    for m in models:
        s = m["slope"]
        cells = [
            td(m.get("rank"), 0),
            td_text(m["name"], _model_link(m)),
            td(s["n"], 0),
            td(s.get("mean_x"), 2),
            td(s.get("slope"), 2, s.get("ci95") if s.get("reliable") else None),
            td(s.get("intercept"), 2),
            td(s.get("r"), 2),
            td(s.get("stderr"), 3),
            td_text(slope_note(s)),
        ]
        rows.append(_row(cells))
    rep = []
    for r in reported["recognition_vs_retrieval"]["rows"] if reported else []:
        cells = [td(None), td_text(r["model"], f"{e(r['model'])} {REPORTED_BADGE}"), td(None), td(None)]
        cells += [td(r.get("slope"), 2), td(None), td(None), td(None), td_text("")]
        rep.append(_row(cells))
    return _table(headers, _body(rows, rep))


def _fitted(slope: dict) -> tuple[float, float] | None:
    """The line to draw: only for a slope the data can support."""
    return (slope["slope"], slope["intercept"]) if slope.get("reliable") else None


def scatter_chart(models: list[dict], title: str) -> str:
    series = [
        svg.Series(m["name"], svg.color(i), [tuple(p) for p in m["points"]], _fitted(m["slope"]))
        for i, m in enumerate(models)
    ]
    return svg.scatter(series, title)


def concepts_chart(models: list[dict], key: str, label: str) -> str:
    series = []
    for i, m in enumerate(models):
        s = svg.Series(m["name"], svg.color(i))
        for b in BUCKETS:
            score = m["caption"].get(b)
            if score and finite(score.get(key)):
                x = int(b[0])
                s.points.append((x, score[key]))
                ci = score.get(f"{key}_ci95") or [math.nan, math.nan]
                s.errors.append((x, ci[0], ci[1]))
        series.append(s)
    return svg.by_concepts(series, f"{label} by number of positive concepts", f"{label} (%)")


def cohort_section(cohort: dict, models: list[dict], reported: dict | None) -> str:
    n = cohort["id"]
    diagnostics = [m for m in models if m["diagnostics"]]
    diag = (
        f'<h3 id="diagnostics-{n}">Diagnostics: direct and caption-augmented (CAG)</h3>'
        f"{diagnostics_table(diagnostics, reported)}"
        if diagnostics
        else ""
    )
    compared = ""
    if cohort.get("comparison"):
        compared = (
            '<p class="note">Is one model really better than another on the same samples? '
            f'<a href="{e(cohort["comparison"])}">Paired comparison of this table</a>: differences with '
            "paired-bootstrap intervals and McNemar tests, and every sample side by side.</p>"
        )
    return f"""<section class="cohort" id="cohort-{n}">
<h2 id="captioning-{n}">{e(cohort["label"])}</h2>
{caption_table(models, reported)}
{compared}
<div class="charts"><figure>{concepts_chart(models, "acc_pos", "Acc+")}<figcaption>Acc+ per bucket with 95%
intervals.</figcaption></figure><figure>{concepts_chart(models, "acc_neg", "Acc−")}<figcaption>Acc− per bucket with
95% intervals.</figcaption></figure></div>
<h3 id="controls-{n}">Controls</h3>
{controls_table(models)}
{diag}
<h3 id="slopes-{n}">Recognition vs retrieval</h3>
{slope_table(models, reported)}
<figure>{scatter_chart(models, "Recognition F1 vs Acc+ per sample, with the slopes the data support")}<figcaption>One
point per sample (overlapping points look darker); an OLS line per model over its own F1 range, drawn only where the
data can support a slope.</figcaption></figure>
</section>"""


def rejected_section(rejected: list[dict]) -> str:
    if not rejected:
        return ""
    items = []
    for r in rejected:
        shown = "".join(f"<li><code>{e(p)}</code></li>" for p in r["problems"][:SHOWN_PROBLEMS])
        more = len(r["problems"]) - SHOWN_PROBLEMS
        extra = f'<li class="muted">… and {more} more (see {DATA_FILE})</li>' if more > 0 else ""
        items.append(f"<li>{e(r['path'])}: {len(r['problems'])} problem(s)<ul>{shown}{extra}</ul></li>")
    return f"""<section id="rejected"><h2>Rejected submissions</h2>
<p class="note">Not shown in any table. Each problem names the file, task, record, field and the rule it breaks.</p>
<ul>{"".join(items)}</ul></section>"""


def index_page(data: dict) -> str:
    models, cohorts, repic = data["models"], data["cohorts"], data["repic"]
    nav = "".join(f'<li><a href="#cohort-{c["id"]}">{e(c["label"])}</a></li>' for c in cohorts)
    nav += "".join(f'<li><a href="#repic-{c["id"]}">{e(c["label"])}</a></li>' for c in repic["cohorts"])
    human = ""
    if data.get("human"):
        nav += '<li><a href="#human">Human evaluation</a></li>'
        human = (
            f'<section id="human-evaluation">{render("human.html", human=data["human"], standalone=False)}</section>'
        )

    sections = "\n".join(
        cohort_section(c, [m for m in models if m["cohort"] == c["id"]], data["reported"] if c["id"] == 1 else None)
        for c in cohorts
    )
    if repic["models"]:
        links = {m["id"]: f"models/{slug(m['id'])}.html" for m in repic["models"]}
        sections += render("repic.html", repic=repic, links=links)
    body = f"""<header><h1>CoViP leaderboard</h1>
<p class="note">Contextualized visual personalization: does a model recognise the people, pets and things a user
told it about, and bring back the right memories, and only those? Built {e(data["generated"])} from
{data["submissions"]} validated submission(s); every number is recomputed from the per-sample logs. Data:
<a href="{DATA_FILE}">{DATA_FILE}</a>.</p>
<p class="note">Acc+: questions about concepts in the image answered correctly (memories recalled). Acc−: questions
about concepts not in the image answered "cannot be determined" (nothing leaked). Percent, micro-averaged over
questions, per bucket of 1–4 positive concepts and overall; 95% intervals clustered by sample.
<strong>Score</strong>, which ranks (#): the harmonic mean of overall Acc+ and Acc−, so that leaking every memory
(Acc− 0) or recalling none (Acc+ 0) scores 0. Runs are ranked only with like runs (same tasks, data, judge and
preset): each table below is one such group. Checks: how far the verdicts were verified (the rule judge re-run on
every verdict, or an LLM judge's spot check) and whether each record matched the benchmark. Rows marked
<span class="badge reported">reported</span> are the paper's published numbers (its own benchmark and judge): shown
for reference, never ranked or recomputed. Click a column header to sort. The RePIC tasks, another benchmark, have
tables of their own below the CoViP tables.</p>
<nav><ul>{nav}</ul></nav></header>
{sections}
{human}
{rejected_section(data["rejected"])}"""
    return page("CoViP leaderboard", body, 0)


def _score_row(label: str, s: dict) -> str:
    return (
        f"<tr>{td_text(label)}{td(s.get('n'), 0)}{td(s.get('score'))}{td(s.get('acc_pos'), 1, s.get('acc_pos_ci95'))}"
        f"{td(s.get('acc_neg'), 1, s.get('acc_neg_ci95'))}{td(s.get('acc_pos_macro'))}{td(s.get('acc_neg_macro'))}"
        f"{td(s.get('recognition_f1'), 2)}{td(s.get('judge_invalid'), 0)}{td(s.get('judge_error'), 0)}</tr>"
    )


def model_page(
    covip: dict | None,
    repic: dict | None,
    cohorts: tuple[dict | None, dict | None],
    task_links: list[tuple[str, str]],
    index: int,
    comparison: CohortComparison | None,
) -> str:
    """A submission's page: its card, then the scores of its CoViP entry (`covip`) and of its RePIC entry (`repic`),
    each with the table (`cohorts`: CoViP's, RePIC's) it is ranked in."""
    entry = covip or repic
    assert entry is not None, "a model page shows a CoViP or a RePIC entry"
    card = entry["card"]
    items = [f"<dt>Model id</dt><dd>{e(entry['id'])}</dd>"]
    for key, label in CARD_LABELS.items():
        value = e(card[key]) if card.get(key) not in (None, "") else NOT_GIVEN
        if key in entry["card_derived"]:
            value += f" {DERIVED}"
        items.append(f"<dt>{label}</dt><dd>{value}</dd>")
    covip_cohort, repic_cohort = cohorts
    if covip is not None and covip_cohort is not None:
        judge = covip["judge"]
        items.append(f'<dt>Judge</dt><dd>{judge_badge(judge)} <span class="muted">{e(judge.get("id"))}</span></dd>')
        items.append(f"<dt>Checks</dt><dd>{e(checks_text(covip))}</dd>")
        items.append(f"<dt>Ranked in</dt><dd>{e(covip_cohort['label'])}: #{e(covip.get('rank') or '–')}</dd>")
    if repic is not None and repic_cohort is not None:
        items.append(f"<dt>RePIC data</dt><dd>{e(repic['data_checked'])}</dd>")
        items.append(f"<dt>RePIC ranked in</dt><dd>{e(repic_cohort['label'])}: #{e(repic.get('rank') or '–')}</dd>")
    items.append(f"<dt>lmms-eval model</dt><dd>{e(entry['model'])} {e(entry['model_args'])}</dd>")
    items.append(f"<dt>Card from</dt><dd>{e(entry['card_source'])}</dd>")
    sections = _covip_sections(covip, index, comparison) if covip is not None else ""
    if repic is not None:
        sections += render("repic_model.html", entry=repic, cohort=repic_cohort)
    links = "".join(f'<li><a href="{href}">{e(task)}</a></li>' for task, href in task_links)
    body = f"""<p><a href="../index.html">← leaderboard</a></p>
<h1>{e(entry["name"])}</h1>
<h2>Model card</h2><dl class="card">{"".join(items)}</dl>
{sections}
<h2>Samples</h2><p class="note">Every logged sample with its pictures, the model's output and each verdict.</p>
<ul>{links}</ul>{_compared(entry, comparison)}"""
    return page(f"{entry['name']} – CoViP leaderboard", body, 1)


def _covip_sections(entry: dict, index: int, comparison: CohortComparison | None) -> str:
    """A model page's CoViP scores: captioning per bucket and control, diagnostics, the recognition slope."""
    rows = [_score_row(b, entry["caption"][b]) for b in (*BUCKETS, "overall") if b in entry["caption"]]
    for control, scores in entry["controls"].items():
        rows += [_score_row(f"{control} {b}", s) for b, s in scores.items()]
    head = ["Bucket", "Samples", "Score", "Acc+ [95% CI]", "Acc− [95% CI]", "Acc+ macro", "Acc− macro", "Recog. F1"]
    head += ["Invalid", "Failed"]
    scores = _table(head, _body(rows)) if rows else "<p>No captioning tasks.</p>"
    diag_rows = [
        f"<tr>{td_text(DIAG_NAMES[d])}{td_text(v)}{td(s['n'], 0)}{td(s['score'], 1, s['score_ci95'])}</tr>"
        for d, variants in entry["diagnostics"].items()
        for v, s in variants.items()
    ]
    diag = (
        _table(["Task", "Variant", "Samples", "Score [95% CI]"], _body(diag_rows))
        if diag_rows
        else "<p>No diagnostics tasks.</p>"
    )
    s = entry["slope"]
    if s.get("slope") is None:
        slope = f"<p>Slope not available: {e(s.get('reason'))}</p>"
    else:
        interval = f"[95% CI {fmt(s['ci95'][0], 3)}, {fmt(s['ci95'][1], 3)}]" if s.get("reliable") else ""
        slope = (
            f"<p>Slope m = {fmt(s['slope'], 3)} {interval}, intercept {fmt(s['intercept'], 3)}, r = {fmt(s['r'], 3)}, "
            f"standard error {fmt(s['stderr'], 3)}, n = {s['n']}.</p>"
        )
        if not s.get("reliable"):
            slope += f'<p class="bad">Unreliable, not drawn: {e(s["reason"])}.</p>'
    chart = svg.scatter(
        [svg.Series(entry["name"], svg.color(index), [tuple(p) for p in entry["points"]], _fitted(s))],
        f"Recognition F1 vs Acc+ per sample: {entry['name']}",
    )
    return f"""<h2>Personalized captioning</h2>{scores}
<h2>Diagnostics</h2>{diag}
<h2>Recognition vs retrieval</h2>{slope}<figure>{chart}</figure>"""


def _compared(entry: dict, comparison: CohortComparison | None) -> str:
    """Links to the paired comparison of the model's CoViP table ("" when it has none)."""
    if comparison is None:
        return ""
    others = [label for model_id, label in comparison.labels.items() if model_id != entry["id"]]
    pages = "".join(
        f'<li><a href="../{comparison.folder}/{task_file(task)}">{e(task)}</a></li>'
        for task in sorted(comparison.sides[0].records)
    )
    return f"""<h2>Compared with the other models of its table</h2>
<p class="note">With {e(", ".join(others))}, on the same samples:
<a href="../{comparison.folder}/index.html">paired differences</a> (Acc+, Acc− and recognition F1 with paired-bootstrap
intervals, McNemar tests), and side by side, sample by sample:</p><ul>{pages}</ul>"""


def _caption_sample(record: CaptionRecord, others: dict[str, list[bool]] | None) -> tuple[str, set[str]]:
    """The caption, its names and each question's verdict; `others`: per question id, whether each other model of
    the table got it right (None when the model is alone in its table)."""
    positives, said = set(record.positives), metrics.mentioned(record.caption, record.names)
    name_html = ", ".join(
        f'<span class="name{" pos" if i in positives else ""}{" said" if i in said else ""}">{e(n)}</span>'
        f"{' (in image)' if i in positives else ''}"
        for i, n in enumerate(record.names)
    )
    rows, marks = [], set()
    for question, verdict in record.judged():
        options = "<br>".join(f"{e(k)}: {e(t)}" for k, t in question.options.items())
        right = metrics.verdict_correct(record, question, verdict)
        cells = [
            td_text(record.names[question.concept]),
            td_text("in image" if record.is_positive(question) else "absent"),
            td_text(question.question),
            td_text("", options),
            td_text(question.gold),
            td_text(verdict.pred),
            td_text("right", RIGHT) if right else td_text("wrong", WRONG),
        ]
        row_marks = set() if right else {"wrong"}
        if others is not None:
            rights = others[question.qid]
            differs = any(r != right for r in rights)
            mark = ' <span class="differs-mark">differs</span>' if differs else ""
            cells.append(
                td_text(f"{sum(rights)} of {len(rights)} right", f"{sum(rights)} of {len(rights)} right{mark}")
            )
            if differs:
                row_marks.add("differs")
        marks |= row_marks
        rows.append(f'<tr class="{" ".join(["q", *sorted(row_marks)])}">{"".join(cells)}</tr>')
    head = ["Concept", "Status", "Question", "Options", "Gold", "Judge", "Verdict"]
    table = _table(head + (["Others"] if others is not None else []), _body(rows))
    f1 = metrics.recognition_f1(record.caption, record.names, record.positives)
    content = (
        f'<div><p class="caption">{e(record.caption)}</p><p class="muted">Concepts in context: {name_html}. '
        f"Recognition F1 {fmt(f1, 2)}.</p>{table}</div>"
    )
    return content, marks


def _diagnostic_sample(record: DiagnosticRecord) -> str:
    fields: list[tuple[str, Any]] = [("response", record.response)]
    if record.task == "lsd":
        fields.append(("extracted answer", metrics.extract_answer(record.response, record.preset)))
    fields += [
        ("reference", record.reference),
        ("verdict", record.verdict),
        ("score", metrics.diagnostic_score(record)),
    ]
    items = "".join(f"<dt>{e(k)}</dt><dd>{fmt(v) if finite(v) else e(v)}</dd>" for k, v in fields if v is not None)
    return f'<div><dl class="card">{items}</dl></div>'


def _repic_sample(record: RepicRecord) -> str:
    """The caption, the concepts the model was shown, and each ground-truth slot's outcome under both metrics."""
    keys = repic_outcomes(record.gt, record.caption, record.pool, record.bucket)
    names = name_outcomes(record.gt, record.caption, record.pool, record.bucket)
    slots = [
        {"key": key, "name": record.pool[key], "shown": key in record.shown, "repic": by_key, "corrected": by_name}
        for key, by_key, by_name in zip(record.gt, keys, names, strict=True)
    ]
    return render("repic_sample.html", record=record, slots=slots)


def task_page(
    entry: dict, task: TaskRun, found: Benchmark | RepicSet | str, images: Path, comparison: CohortComparison | None
) -> str:
    """Every sample of one task: its pictures (`found`: the task's data, or why it is not here), the model's output
    and each verdict (captioning: with a legend, and a filter to the wrong questions and to those another model of
    the table judged otherwise) or, for RePIC, each ground-truth concept's outcome."""
    caption = task.info.family == "caption"
    compared = comparison is not None and caption
    sections = []
    for i, record in enumerate(task.records):
        pictures = None if isinstance(found, str) else record_pictures(found, record, images)
        missing = found if isinstance(found, str) else "" if pictures else "the sample is not in the benchmark"
        context = {"sample_id": record.sample_id, "control": task.info.control, "img": "../../img/"}
        images_html = render("pictures.html", pictures=pictures, missing=missing, **context)
        marks: set[str] = set()
        if isinstance(record, CaptionRecord):
            others = comparison.others(entry["id"], task.name, record.sample_id) if compared else None
            content, marks = _caption_sample(record, others)
        elif isinstance(record, RepicRecord):
            content = _repic_sample(record)
        else:
            content = _diagnostic_sample(record)
        classes = " ".join(["sample", *sorted(marks)])
        sections.append(
            f'<section class="{classes}" id="s{i}"><h3>{e(record.sample_id)}</h3>{images_html}{content}</section>'
        )
    back = f'<a href="../{slug(entry["id"])}.html">← {e(entry["name"])}</a>'
    guide = ""
    if caption:
        choices = [("wrong", "only questions this model got wrong")]
        if compared:
            choices.append(("differs", "only questions another model of its table judged otherwise"))
            back += f' · <a href="../../{comparison.folder}/{task_file(task.name)}">side by side with its table</a>'
        guide = render("legend.html", compared=False) + render("filter.html", choices=choices)
    body = f"""<p>{back} · <a href="../../index.html">leaderboard</a></p>
<h1>{e(entry["name"])}: {e(task.name)}</h1><p class="note">{len(task.samples)} samples.</p>{guide}{"".join(sections)}"""
    return page(f"{entry['name']} – {task.name}", body, 2)


def build_site(data: dict, reports: list[Report], out: Path, benchmarks: Benchmarks, repic_sets: RepicSets) -> Path:
    """Write the site (`data` from aggregate.leaderboard, over the valid `reports`) into out; return index.html."""
    if out.exists() and any(out.iterdir()):
        if not (out / DATA_FILE).is_file():
            raise FileExistsError(f"{out} exists and is not a leaderboard site (no {DATA_FILE}): refusing to overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    write_assets(out)
    valid = {r.submission.model_id: r for r in reports if r.valid}
    runs = {model_id: report.submission.run for model_id, report in valid.items()}
    cohorts = {c["id"]: c for c in data["cohorts"]}
    repic_cohorts = {c["id"]: c for c in data["repic"]["cohorts"]}
    comparisons = {}
    for cohort in data["cohorts"]:
        members = [m for m in data["models"] if m["cohort"] == cohort["id"]]
        comparison = cohort_comparison(cohort, members, runs, out, benchmarks)
        if comparison is not None:
            comparisons[cohort["id"]] = comparison
            cohort["comparison"] = f"{comparison.folder}/index.html"
    (out / DATA_FILE).write_text(json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    (out / "models").mkdir()
    covip = {m["id"]: m for m in data["models"]}
    repic = {m["id"]: m for m in data["repic"]["models"]}
    for index, model_id in enumerate([*covip, *(i for i in repic if i not in covip)]):
        run, report, entry = runs[model_id], valid[model_id], covip.get(model_id) or repic[model_id]
        comparison = comparisons.get(entry["cohort"]) if model_id in covip else None
        folder = out / "models" / slug(model_id)
        folder.mkdir()
        links = []
        for name, task in sorted(run.tasks.items()):
            identity = report.identities[name]
            found = repic_sets.find(task, identity) if task.info.family == REPIC else benchmarks.find(task)
            html = task_page(entry, task, found, out / "img", comparison)
            (folder / task_file(name)).write_text(html, encoding="utf-8")
            links.append((name, f"{folder.name}/{task_file(name)}"))
        tables = (
            cohorts[covip[model_id]["cohort"]] if model_id in covip else None,
            repic_cohorts[repic[model_id]["cohort"]] if model_id in repic else None,
        )
        model = model_page(covip.get(model_id), repic.get(model_id), tables, links, index, comparison)
        (out / "models" / f"{folder.name}.html").write_text(model, encoding="utf-8")
    index_path = out / "index.html"
    index_path.write_text(index_page(data), encoding="utf-8")
    return index_path
