"""The static leaderboard site: plain HTML files, one stylesheet, one small script, inline SVG charts.

Self-contained on purpose: it opens from disk or any static host, fetches nothing (a
Content-Security-Policy meta tag forbids every outside request), and reads fine without
JavaScript (the script only makes tables sortable). Every string that comes from a submission
(model names, card fields, captions, questions) passes through `e()` before it is written.

Layout: `index.html`, `leaderboard.json` (the data the pages show), `assets/`, `models/<slug>.html`
(model card, judge badge, scores), `models/<slug>/<task>.html` (per-sample browsing) and `img/`
(query-image thumbnails).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from covip.leaderboard import svg
from covip.leaderboard.aggregate import BUCKETS, CONTROLS, MODES
from covip.leaderboard.images import ImageStore
from covip.leaderboard.submission import Submission
from covip.leaderboard.tasks import DIAGNOSTICS
from covip.tasks.scoring import metrics

CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"
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


def e(value: Any) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return escape(str(value), quote=True)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "–"


def td(value: Any, digits: int = 1, ci: Any = None) -> str:
    """A numeric cell whose `data-v` is what the table sorts on (empty for a missing value)."""
    sort = f"{value:.6g}" if _finite(value) else ""
    interval = ""
    if ci and _finite(ci[0]) and _finite(ci[1]):
        interval = f' <span class="muted">[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]</span>'
    return f'<td data-v="{sort}">{fmt(value, digits)}{interval}</td>'


def td_text(text: str, html: str | None = None) -> str:
    return f'<td class="text" data-v="{e(text)}">{html if html is not None else e(text)}</td>'


def slug(model_id: str) -> str:
    """A file name for a model id (ids are untrusted text): safe characters plus a hash against collisions."""
    base = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")[:40] or "model"
    return f"{base}-{hashlib.sha256(model_id.encode()).hexdigest()[:8]}"


def page(title: str, body: str, depth: int) -> str:
    up = "../" * depth
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n"
        f'<link rel="stylesheet" href="{up}assets/leaderboard.css">\n'
        f'<script src="{up}assets/leaderboard.js" defer></script>\n'
        f"</head><body>\n{body}\n</body></html>\n"
    )


def judge_badge(judge: dict[str, Any]) -> str:
    backend = str(judge.get("backend") or "unknown")
    kind = "judge-rule" if backend == "rule" else "judge-llm"
    label = " · ".join(str(judge[k]) for k in ("backend", "model", "preset") if judge.get(k))
    return f'<span class="badge {kind}" title="judge id: {e(judge.get("id") or "not recorded")}">{e(label)}</span>'


REPORTED_BADGE = '<span class="badge reported" title="as published; not recomputed here">reported</span>'


def _table(headers: list[str], bodies: list[str], caption: str = "") -> str:
    head = "".join(f'<th scope="col">{h}</th>' for h in headers)
    cap = f"<caption>{caption}</caption>" if caption else ""
    table = f'<table class="sortable">{cap}<thead><tr>{head}</tr></thead>{"".join(bodies)}</table>'
    return f'<div class="scroll">{table}</div>'


def _model_link(entry: dict, depth: int = 0) -> str:
    return f'<a href="{"../" * depth}models/{slug(entry["id"])}.html">{e(entry["name"])}</a>'


def caption_table(models: list[dict], reported: dict) -> str:
    headers = ["#", "Model", "Judge"]
    for b in BUCKETS:
        headers += [f"{b} Acc+", f"{b} Acc−"]
    headers += ["Overall Acc+ [95% CI]", "Overall Acc− [95% CI]", "Recog. F1", "Judge invalid / failed", "Samples"]
    rows = []
    for m in models:
        c = m["caption"]
        cells = [
            td(m.get("rank"), 0),
            td_text(m["name"], _model_link(m)),
            td_text(str(m["judge"].get("id")), judge_badge(m["judge"])),
        ]
        for b in BUCKETS:
            cells += [td(c.get(b, {}).get("acc_pos")), td(c.get(b, {}).get("acc_neg"))]
        o = c.get("overall", {})
        cells += [
            td(o.get("acc_pos"), 1, o.get("acc_pos_ci95")),
            td(o.get("acc_neg"), 1, o.get("acc_neg_ci95")),
            td(o.get("recognition_f1"), 2),
            td_text(f"{o.get('judge_invalid', '–')} / {o.get('judge_error', '–')}"),
            td(o.get("n"), 0),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rep = []
    for r in reported["capeval_qas"]["rows"]:
        judge = f'<span class="badge reported" title="{e(reported.get("note", ""))}">paper\'s judge</span>'
        cells = [td(None), td_text(r["model"], f"{e(r['model'])} {REPORTED_BADGE}"), td_text("paper's judge", judge)]
        for b in BUCKETS:
            cells += [td(r.get(b, {}).get("acc_pos")), td(r.get(b, {}).get("acc_neg"))]
        cells += [td(None), td(None), td(None), td_text("–"), td(None)]
        rep.append("<tr>" + "".join(cells) + "</tr>")
    return _table(
        headers,
        [f"<tbody>{''.join(rows)}</tbody>", f'<tbody class="reported">{"".join(rep)}</tbody>'],
    )


def controls_table(models: list[dict]) -> str:
    headers = ["#", "Model", "Acc+", "Acc+ blind", "Acc+ noctx", "Acc−", "Acc− blind", "Acc− noctx"]
    rows = []
    for m in models:
        o = m["caption"].get("overall", {})
        ctl = {c: m["controls"].get(c, {}).get("overall", {}) for c in CONTROLS}
        cells = [td(m.get("rank"), 0), td_text(m["name"], _model_link(m)), td(o.get("acc_pos"))]
        cells += [td(ctl[c].get("acc_pos")) for c in CONTROLS] + [td(o.get("acc_neg"))]
        cells += [td(ctl[c].get("acc_neg")) for c in CONTROLS]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _table(headers, [f"<tbody>{''.join(rows)}</tbody>"])


def diagnostics_table(models: list[dict], reported: dict) -> str:
    headers = ["#", "Model"] + [f"{DIAG_NAMES[d]} {mode}" for d in DIAGNOSTICS for mode in MODES]
    rows = []
    for m in models:
        if not m["diagnostics"]:
            continue
        cells = [td(m.get("rank"), 0), td_text(m["name"], _model_link(m))]
        for d in DIAGNOSTICS:
            for mode in MODES:
                s = m["diagnostics"].get(d, {}).get(mode, {})
                cells.append(td(s.get("score"), 1, s.get("score_ci95")))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rep = []
    for r in reported["diagnostics"]["rows"]:
        cells = [td(None), td_text(r["model"], f"{e(r['model'])} {REPORTED_BADGE}")]
        cells += [td(r.get(d, {}).get(mode)) for d in DIAGNOSTICS for mode in MODES]
        rep.append("<tr>" + "".join(cells) + "</tr>")
    return _table(headers, [f"<tbody>{''.join(rows)}</tbody>", f'<tbody class="reported">{"".join(rep)}</tbody>'])


def slope_table(models: list[dict], reported: dict) -> str:
    headers = ["#", "Model", "Samples", "Mean recog. F1", "Slope m [95% CI]", "Intercept", "r", "Std. error", "Note"]
    rows = []
    for m in models:
        s = m["slope"]
        cells = [
            td(m.get("rank"), 0),
            td_text(m["name"], _model_link(m)),
            td(s["n"], 0),
            td(s.get("mean_x"), 2),
            td(s.get("slope"), 2, s.get("ci95")),
            td(s.get("intercept"), 2),
            td(s.get("r"), 2),
            td(s.get("stderr"), 3),
            td_text(s.get("reason") or ""),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rep = []
    for r in reported["recognition_vs_retrieval"]["rows"]:
        cells = [td(None), td_text(r["model"], f"{e(r['model'])} {REPORTED_BADGE}"), td(None), td(None)]
        cells += [td(r.get("slope"), 2), td(None), td(None), td(None), td_text("")]
        rep.append("<tr>" + "".join(cells) + "</tr>")
    return _table(headers, [f"<tbody>{''.join(rows)}</tbody>", f'<tbody class="reported">{"".join(rep)}</tbody>'])


def scatter_chart(models: list[dict], title: str) -> str:
    series = []
    for i, m in enumerate(models):
        s = m["slope"]
        line = (s["slope"], s["intercept"]) if s.get("slope") is not None else None
        series.append(svg.Series(m["name"], svg.color(i), [tuple(p) for p in m["points"]], line))
    return svg.scatter(series, title)


def concepts_chart(models: list[dict], key: str, label: str) -> str:
    series = []
    for i, m in enumerate(models):
        s = svg.Series(m["name"], svg.color(i))
        for b in BUCKETS:
            score = m["caption"].get(b)
            if score and _finite(score.get(key)):
                x = int(b[0])
                s.points.append((x, score[key]))
                ci = score.get(f"{key}_ci95") or [math.nan, math.nan]
                s.errors.append((x, ci[0], ci[1]))
        series.append(s)
    return svg.by_concepts(series, f"{label} by number of positive concepts", f"{label} (%)")


def index_page(data: dict) -> str:
    models, reported = data["models"], data["reported"]
    judges = sorted({m["judge"].get("id") or "not recorded" for m in models})
    body = f"""<header><h1>CoViP leaderboard</h1>
<p class="note">Contextualized visual personalization: does a model recognise the people, pets and things a user
told it about, and bring back the right memories, and only those? Built {e(data["generated"])} from
{len(models)} validated submission(s); every number is recomputed from the per-sample logs. Judge(s):
{e(", ".join(judges))}. Data: <a href="{DATA_FILE}">{DATA_FILE}</a>.</p></header>
<h2 id="captioning">Personalized captioning (CapEval-QAs)</h2>
<p class="note">Acc+: questions about concepts in the image answered correctly (memories recalled). Acc−: questions
about concepts not in the image answered "cannot be determined" (nothing leaked). Percent, micro-averaged over
questions per bucket of 1–4 positive concepts; 95% intervals clustered by sample. # ranks computed rows by overall
Acc+. Rows marked <span class="badge reported">reported</span> are the paper's published numbers (its own benchmark
and judge): shown for reference, never ranked or recomputed. Click a column header to sort.</p>
{caption_table(models, reported)}
<div class="charts"><figure>{concepts_chart(models, "acc_pos", "Acc+")}<figcaption>Acc+ per bucket with 95%
intervals.</figcaption></figure><figure>{concepts_chart(models, "acc_neg", "Acc−")}<figcaption>Acc− per bucket with
95% intervals.</figcaption></figure></div>
<h2 id="controls">Controls</h2>
<p class="note">The same questions with the query image blanked (<em>blind</em>) or the context removed
(<em>noctx</em>): a model that still scores there is not looking, or not remembering.</p>
{controls_table(models)}
<h2 id="diagnostics">Diagnostics: direct and caption-augmented (CAG)</h2>
<p class="note">LSD: last-seen detection (token F1); LAR: last-action recall (judge accuracy); ITR:
instruction-triggered recall. Mean per-sample score in percent with 95% intervals.</p>
{diagnostics_table(models, reported)}
<h2 id="slopes">Recognition vs retrieval</h2>
<p class="note">Per model, ordinary least squares of each sample's Acc+ (0–1) on its recognition F1 (0–1): the slope m
says how much recognising the right concepts turns into recalling their memories (the paper's Figure 5). The 95%
interval is a t interval on n − 2 degrees of freedom. The slope is undefined when every sample has the same F1.</p>
{slope_table(models, reported)}
<figure>{scatter_chart(models, "Recognition F1 vs Acc+ per sample, with fitted lines")}<figcaption>One point
per sample (overlapping points look darker), one OLS line per model over its own F1 range.</figcaption></figure>
"""
    return page("CoViP leaderboard", body, 0)


def _score_rows(label: str, s: dict) -> str:
    return (
        f"<tr>{td_text(label)}{td(s.get('n'), 0)}{td(s.get('acc_pos'), 1, s.get('acc_pos_ci95'))}"
        f"{td(s.get('acc_neg'), 1, s.get('acc_neg_ci95'))}{td(s.get('acc_pos_macro'))}{td(s.get('acc_neg_macro'))}"
        f"{td(s.get('recognition_f1'), 2)}{td(s.get('judge_invalid'), 0)}{td(s.get('judge_error'), 0)}</tr>"
    )


def model_page(entry: dict, task_links: list[tuple[str, str]], index: int) -> str:
    card = entry["card"]
    items = [f"<dt>Model id</dt><dd>{e(entry['id'])}</dd>"]
    for key, label in CARD_LABELS.items():
        value = e(card[key]) if card.get(key) not in (None, "") else NOT_GIVEN
        if key in entry["card_derived"]:
            value += f" {DERIVED}"
        items.append(f"<dt>{label}</dt><dd>{value}</dd>")
    items.append(
        f'<dt>Judge</dt><dd>{judge_badge(entry["judge"])} <span class="muted">{e(entry["judge"].get("id"))}</span></dd>'
    )
    items.append(f"<dt>lmms-eval model</dt><dd>{e(entry['model'])} {e(entry['model_args'])}</dd>")
    items.append(f"<dt>Card from</dt><dd>{e(entry['card_source'])}</dd>")
    rows = [_score_rows(b, entry["caption"][b]) for b in (*BUCKETS, "overall") if b in entry["caption"]]
    for control, scores in entry["controls"].items():
        rows += [_score_rows(f"{control} {b}", s) for b, s in scores.items()]
    head = [
        "Bucket",
        "Samples",
        "Acc+ [95% CI]",
        "Acc− [95% CI]",
        "Acc+ macro",
        "Acc− macro",
        "Recog. F1",
        "Invalid",
        "Failed",
    ]
    scores = _table(head, [f"<tbody>{''.join(rows)}</tbody>"]) if rows else "<p>No captioning tasks.</p>"
    diag_rows = [
        f"<tr>{td_text(DIAG_NAMES[d])}{td_text(v)}{td(s['n'], 0)}{td(s['score'], 1, s['score_ci95'])}</tr>"
        for d, variants in entry["diagnostics"].items()
        for v, s in variants.items()
    ]
    diag = (
        _table(["Task", "Variant", "Samples", "Score [95% CI]"], [f"<tbody>{''.join(diag_rows)}</tbody>"])
        if diag_rows
        else "<p>No diagnostics tasks.</p>"
    )
    s = entry["slope"]
    slope = (
        f"<p>Slope m = {fmt(s['slope'], 3)} [95% CI {fmt(s['ci95'][0], 3)}, {fmt(s['ci95'][1], 3)}], "
        f"intercept {fmt(s['intercept'], 3)}, r = {fmt(s['r'], 3)}, "
        f"standard error {fmt(s['stderr'], 3)}, n = {s['n']}.</p>"
        if s.get("slope") is not None
        else f"<p>Slope not available: {e(s.get('reason'))}</p>"
    )
    chart = svg.scatter(
        [
            svg.Series(
                entry["name"],
                svg.color(index),
                [tuple(p) for p in entry["points"]],
                (s["slope"], s["intercept"]) if s.get("slope") is not None else None,
            )
        ],
        f"Recognition F1 vs Acc+ per sample: {entry['name']}",
    )
    links = "".join(f'<li><a href="{href}">{e(task)}</a></li>' for task, href in task_links)
    body = f"""<p><a href="../index.html">← leaderboard</a></p>
<h1>{e(entry["name"])}</h1>
<h2>Model card</h2><dl class="card">{"".join(items)}</dl>
<h2>Personalized captioning</h2>{scores}
<h2>Diagnostics</h2>{diag}
<h2>Recognition vs retrieval</h2>{slope}<figure>{chart}</figure>
<h2>Samples</h2><p class="note">Every logged sample with its query image, the model's output and each verdict.</p>
<ul>{links}</ul>"""
    return page(f"{entry['name']} – CoViP leaderboard", body, 1)


def _caption_sample(record: dict) -> str:
    names, positives, said = record["names"], set(record["positives"]), set(record.get("mentioned") or [])
    name_html = ", ".join(
        f'<span class="name{" pos" if i in positives else ""}{" said" if i in said else ""}">{e(n)}</span>'
        f"{' (in image)' if i in positives else ''}"
        for i, n in enumerate(names)
    )
    questions = {q.get("qid"): q for q in record.get("questions") or [] if isinstance(q, dict)}
    rows = []
    for v in record["verdicts"]:
        q = questions.get(v["qid"], {})
        options = q.get("options") if isinstance(q.get("options"), dict) else {}
        opts = "<br>".join(f"{e(k)}: {e(t)}" for k, t in options.items())
        ok = metrics.verdict_correct(v)
        rows.append(
            f"<tr>{td_text(names[v['concept']])}{td_text('in image' if v['positive'] else 'absent')}"
            f"{td_text(str(q.get('question', v['qid'])))}{td_text('', opts)}{td_text(v['gold'])}{td_text(v['pred'])}"
            f"{td_text('right', RIGHT) if ok else td_text('wrong', WRONG)}</tr>"
        )
    table = _table(
        ["Concept", "Status", "Question", "Options", "Gold", "Judge", "Verdict"], [f"<tbody>{''.join(rows)}</tbody>"]
    )
    return (
        f'<div><p class="caption">{e(record["caption"])}</p><p class="muted">Concepts in context: {name_html}. '
        f"Recognition F1 {fmt(record['recognition_f1'], 2)}.</p>{table}</div>"
    )


def _diagnostic_sample(record: dict) -> str:
    fields = [(k, record.get(k)) for k in ("response", "extracted", "reference", "verdict", "score") if k in record]
    items = "".join(f"<dt>{e(k)}</dt><dd>{e(v) if not _finite(v) else fmt(v)}</dd>" for k, v in fields)
    return f'<div><dl class="card">{items}</dl></div>'


def task_page(sub: Submission, entry: dict, task: str, images: ImageStore) -> str:
    log = sub.tasks[task]
    data = (sub.covip.get("data") or {}).get(task) or {}
    location = str(data.get("location") or "")
    split = str(((sub.results[log.results_file].get("configs") or {}).get(task) or {}).get("test_split") or "test")
    family = log.info.family
    missing = images.unavailable(location, family, split, data.get("manifest_sha256"))
    sections = []
    for i, record in enumerate(log.records):
        name = images.thumbnail(location, family, split, data.get("manifest_sha256"), record["sample_id"])
        img = (
            f'<img src="../../img/{name}" alt="query image of {e(record["sample_id"])}" loading="lazy">'
            if name
            else f'<p class="muted">Query image not available{": " + e(missing) if missing else ""}.</p>'
        )
        if log.info.control == "blind":
            img += '<p class="muted">The model saw a blank image instead (blind control).</p>'
        content = _caption_sample(record) if family == "caption" else _diagnostic_sample(record)
        sections.append(
            f'<section class="sample" id="s{i}"><h3>{e(record["sample_id"])}</h3><div>{img}</div>{content}</section>'
        )
    back = f'<a href="../{slug(entry["id"])}.html">← {e(entry["name"])}</a>'
    body = f"""<p>{back} · <a href="../../index.html">leaderboard</a></p>
<h1>{e(entry["name"])}: {e(task)}</h1><p class="note">{len(log.records)} samples.</p>{"".join(sections)}"""
    return page(f"{entry['name']} – {task}", body, 2)


def _json_safe(value: Any) -> Any:
    """NaN and infinity become null: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def build_site(data: dict, subs: list[Submission], out: Path, data_dir: Path | None = None) -> Path:
    """Write the site for validated submissions (`data` from aggregate.leaderboard) into out; return index.html."""
    if out.exists() and any(out.iterdir()):
        if not (out / DATA_FILE).is_file():
            raise FileExistsError(f"{out} exists and is not a leaderboard site (no {DATA_FILE}): refusing to overwrite")
        shutil.rmtree(out)
    (out / "assets").mkdir(parents=True)
    static = resources.files("covip.leaderboard").joinpath("static")
    for name in ("leaderboard.js", "leaderboard.css"):
        (out / "assets" / name).write_text(static.joinpath(name).read_text("utf-8"), encoding="utf-8")
    (out / DATA_FILE).write_text(json.dumps(_json_safe(data), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    images = ImageStore(out / "img", data_dir)
    by_id = {s.model_id: s for s in subs}
    (out / "models").mkdir()
    for index, entry in enumerate(data["models"]):
        sub = by_id[entry["id"]]
        folder = out / "models" / slug(entry["id"])
        folder.mkdir()
        links = []
        for task in sorted(sub.tasks):
            name = f"{re.sub(r'[^a-z0-9_]', '_', task)}.html"
            (folder / name).write_text(task_page(sub, entry, task, images), encoding="utf-8")
            links.append((task, f"{folder.name}/{name}"))
        (out / "models" / f"{folder.name}.html").write_text(model_page(entry, links, index), encoding="utf-8")
    index_path = out / "index.html"
    index_path.write_text(index_page(data), encoding="utf-8")
    return index_path
