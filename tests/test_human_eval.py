"""`covip-human` over real `lmms_eval` runs of the built-in baselines: the study, the app through Flask's test client
(the real app and SQLite file; the browser test drives it in Chromium), refusals, and the report's numbers against
ratings given on purpose (raters who follow the judge, contradict it, or agree with each other)."""

from __future__ import annotations

import contextlib
import io
import json
import re
from html import unescape
from pathlib import Path

import pytest
from leaderboard_edits import copy_run, read_rows

pytest.importorskip("flask", reason="the human extra is not installed (make install installs it)")

from covip.leaderboard.cli import main as leaderboard  # noqa: E402
from covip.leaderboard.compare import read_runs  # noqa: E402
from covip.leaderboard.human.app import create_app  # noqa: E402
from covip.leaderboard.human.cli import main as covip_human  # noqa: E402
from covip.leaderboard.human.report import report  # noqa: E402
from covip.leaderboard.human.store import Store  # noqa: E402
from covip.leaderboard.human.study import build_study  # noqa: E402

pytest_plugins = ["leaderboard_runs"]
SYSTEMS = ("oracle", "retrieval", "shortcut")
ITEMS = 9


@pytest.fixture()
def app(real_runs, tmp_path: Path):
    """The app over the three baselines (a seeded draw of 9 items), its study, its store, and the runs' captions."""
    study = build_study(read_runs([real_runs[name] for name in SYSTEMS]), items=ITEMS, seed=0)
    store = Store(tmp_path / "study.sqlite")
    store.open_study(study.definition(), study.fingerprint)
    return create_app(study, store).test_client(), study, store, captions(real_runs)


def captions(real_runs) -> dict[tuple[str, str], dict[str, str]]:
    """(task, sample id) -> system -> its caption, read from the runs' sample logs (the test's own reading)."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for name in SYSTEMS:
        for bucket in ("1c", "2c", "3c", "4c"):
            for row in read_rows(real_runs[name], f"covip_caption_{bucket}"):
                record = row["covip_record"]
                found.setdefault((f"covip_caption_{bucket}", record["sample_id"]), {})[f"covip_{name}"] = record[
                    "caption"
                ]
    return found


def shown(html: str) -> dict[str, str]:
    """What a rating page shows: the item id and the two captions."""
    return {
        "item": re.search(r'name="item" value="([0-9a-f]+)"', html)[1],
        "left": unescape(re.search(r'id="caption-left">(.*?)</p>', html, re.S)[1]),
        "right": unescape(re.search(r'id="caption-right">(.*?)</p>', html, re.S)[1]),
    }


def judge_pick(scores: dict[str, float | None], a: str, b: str) -> str | None:
    if scores[a] is None or scores[b] is None:
        return None
    return "tie" if scores[a] == scores[b] else a if scores[a] > scores[b] else b


def rate_all(client, study, logs, rater: str, choose) -> list[dict]:
    """Rate every item as `choose(item, left system, right system)` says, reading which system is on which side
    from the captions the page shows (None for both when the two captions are the same); returns each page's view."""
    pages = []
    for step in range(len(study.items)):
        page = client.get(f"/rate?rater={rater}")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert f"item {step + 1} of {len(study.items)}" in html and f'<progress value="{step}"' in html
        view = shown(html)
        item = study.by_id[view["item"]]
        written = logs[(item.task, item.sample_id)]
        assert {view["left"], view["right"]} == {written[item.a], written[item.b]}
        left = right = None
        if written[item.a] != written[item.b]:
            left, right = (item.a, item.b) if view["left"] == written[item.a] else (item.b, item.a)
        view |= {"left_system": left, "right_system": right}
        form = {"rater": rater, "item": item.id, **choose(item, left, right)}
        assert client.post("/rate", data=form).status_code == 303
        pages.append(view | form)
    assert "You rated all" in client.get(f"/rate?rater={rater}").get_data(as_text=True)
    return pages


def side_of(winner: str | None, left: str, right: str) -> str:
    return "tie" if winner in (None, "tie") else "left" if winner == left else "right"


def follow_judge(item, left: str, right: str) -> dict[str, str]:
    return {
        key: side_of(judge_pick({s: item.judge[s][metric] for s in (item.a, item.b)}, item.a, item.b), left, right)
        for key, metric in (("context", "acc_pos"), ("faithfulness", "acc_neg"))
    }


def contradict_judge(item, left: str, right: str) -> dict[str, str]:
    flip = {"left": "right", "right": "left", "tie": "tie"}
    return {key: flip[side] for key, side in follow_judge(item, left, right).items()}


def test_study_items_sides_and_captions(app) -> None:
    client, study, _, logs = app
    assert [s.label for s in study.systems] == [f"covip_{name}" for name in SYSTEMS] and len(study.items) == ITEMS
    for item in study.items:
        assert {item.a, item.b} <= {s.label for s in study.systems} and item.a != item.b
        assert study.caption(item, item.a) == logs[(item.task, item.sample_id)][item.a]
    # sides are drawn per rater and item: two raters do not see every item on the same sides
    assert [study.left("ann", i) for i in study.items] != [study.left("bob", i) for i in study.items]
    assert [i.id for i in study.order("ann")] != [i.id for i in study.order("bob")]
    start = client.get("/").get_data(as_text=True)
    assert f"{ITEMS} items" in start and "Context awareness" in start and "Faithfulness to the new image" in start


def test_the_side_recorded_is_the_side_shown_and_the_report_counts_it(app, tmp_path: Path) -> None:
    client, study, store, logs = app
    pages = rate_all(client, study, logs, "ann", follow_judge)
    stored = {r.item: r for r in store.ratings("ann")}
    assert len(stored) == ITEMS
    for page in pages:
        rating = stored[page["item"]]
        if page["left_system"] is not None:
            assert (rating.left, rating.right) == (page["left_system"], page["right_system"])
        assert rating.choices == {"context": page["context"], "faithfulness": page["faithfulness"]}
    rate_all(client, study, logs, "bob", follow_judge)
    rate_all(client, study, logs, "cy", contradict_judge)
    assert covip_human(["report", str(store.path), "--out", str(tmp_path / "report"), "--resamples", "500"]) == 0
    data = json.loads((tmp_path / "report" / "human_report.json").read_text())
    assert data["raters"] == {"ann": ITEMS, "bob": ITEMS, "cy": ITEMS}
    for pair in data["pairs"]:
        items = [i for i in study.items if (i.a, i.b) == (pair["a"], pair["b"])]
        assert pair["ratings"] == 3 * len(items) and pair["rated_items"] == len(items)
        for key, metric in (("context", "acc_pos"), ("faithfulness", "acc_neg")):
            c = pair["criteria"][key]
            picks = [judge_pick({s: i.judge[s][metric] for s in (i.a, i.b)}, i.a, i.b) for i in items]
            ties = sum(p == "tie" for p in picks)
            wins_a = sum(p == pair["a"] for p in picks)
            wins_b = sum(p == pair["b"] for p in picks)
            # ann and bob follow the judge; cy flips every preference
            assert c["outcomes"]["a"]["n"] == 2 * wins_a + wins_b and c["outcomes"]["b"]["n"] == 2 * wins_b + wins_a
            assert c["outcomes"]["tie"]["n"] == 3 * ties
            low, high = c["outcomes"]["tie"]["ci95"] or (0, 1)
            assert low <= c["outcomes"]["tie"]["share"] <= high
            assert c["judge"]["agreement"] == pytest.approx((2 * len(items) + ties) / (3 * len(items)))
            decisive = len(items) - ties
            assert c["judge"]["decisive"] == 3 * decisive
            if decisive:
                assert c["judge"]["decisive_agreement"] == pytest.approx(2 / 3)
            assert c["raters"]["items_rated_by_several"] == len(items)
    markdown = covip_human_report_markdown(store.path)
    assert "| covip_oracle | covip_retrieval | Context awareness | " in markdown
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<h1>CoViP human evaluation</h1>" in page and "Content-Security-Policy" in page


def covip_human_report_markdown(db: Path) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert covip_human(["report", str(db), "--resamples", "200"]) == 0
    return buffer.getvalue()


def test_unanimous_raters_have_fleiss_kappa_1(app, tmp_path: Path) -> None:
    client, study, store, logs = app

    def varied(item, left: str | None, right: str | None) -> dict[str, str]:
        """The same preference per item for every rater, in system terms (a tie when the sides look alike)."""
        pick = ("a", "tie", "b")[int(item.id, 16) % 3]
        side = (
            "tie" if pick == "tie" or left is None else "left" if {item.a: "a", item.b: "b"}[left] == pick else "right"
        )
        return {"context": side, "faithfulness": side}

    for rater in ("ann", "bob"):
        rate_all(client, study, logs, rater, varied)
    data = report(store.definition(), store.ratings())
    kappas = [c["raters"]["fleiss_kappa"] for p in data["pairs"] for c in p["criteria"].values()]
    assert [k for k in kappas if k is not None] and all(k == pytest.approx(1.0) for k in kappas if k is not None)


def test_bad_requests_are_refused(app) -> None:
    client, study, store, _ = app
    item = study.order("ann")[0]
    good = {"rater": "ann", "item": item.id, "context": "left", "faithfulness": "tie"}
    assert client.post("/rate", data={**good, "context": "both"}).status_code == 400
    assert client.post("/rate", data={**good, "item": "0" * 16}).status_code == 400
    assert client.post("/rate", data={**good, "rater": " "}).status_code == 400
    assert client.get("/rate?rater=" + "x" * 81).status_code == 400
    assert client.post("/rate", data=good, headers={"Origin": "http://evil.example"}).status_code == 403
    assert client.post("/rate", data=good, headers={"Origin": "null"}).status_code == 403
    assert store.ratings() == []
    assert client.get("/img/..%2F..%2Fmanifest.json").status_code == 404
    assert client.get("/img/" + "0" * 24 + ".png").status_code == 404
    response = client.post("/rate", data=good)
    assert response.status_code == 303 and len(store.ratings()) == 1
    assert client.post("/rate", data={**good, "context": "right"}).status_code == 303  # the back button: replaced
    [rating] = store.ratings()
    assert rating.choices["context"] == "right"
    page = client.get("/rate?rater=ann")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    name = re.search(r'src="/img/([0-9a-f]+\.png)"', page.get_data(as_text=True))[1]
    assert client.get(f"/img/{name}").status_code == 200


def test_serve_refuses_another_study_in_the_same_database(real_runs, tmp_path: Path, capsys) -> None:
    runs = [str(real_runs[name]) for name in SYSTEMS]
    db = tmp_path / "study.sqlite"
    study = build_study(read_runs([Path(r) for r in runs]), items=ITEMS, seed=0)
    Store(db).open_study(study.definition(), study.fingerprint)
    assert covip_human(["serve", *runs, "--db", str(db), "--items", "5", "--port", "0"]) == 2
    assert f"{db} holds another study (9 items, not 5)" in capsys.readouterr().err
    assert covip_human(["serve", *runs[:2], "--db", str(db), "--port", "0"]) == 2
    assert "holds another study (other systems)" in capsys.readouterr().err
    assert covip_human(["serve", runs[0], "--db", str(tmp_path / "x.sqlite")]) == 2
    assert "at least two runs" in capsys.readouterr().err
    assert covip_human(["serve", runs[0], str(real_runs["oracle_3c"]), "--db", str(tmp_path / "x.sqlite")]) == 2
    assert "the captioning tasks differ" in capsys.readouterr().err
    assert covip_human(["report", str(tmp_path / "none.sqlite")]) == 2


def test_site_shows_the_human_report(real_runs, app, tmp_path: Path) -> None:
    client, study, store, logs = app
    rate_all(client, study, logs, "ann", follow_judge)
    assert covip_human(["report", str(store.path), "--out", str(tmp_path / "report"), "--resamples", "200"]) == 0
    subs = tmp_path / "subs"
    for name in SYSTEMS:
        copy_run(real_runs[name], subs / name)
    site = tmp_path / "site"
    report = tmp_path / "report" / "human_report.json"
    assert leaderboard(["build", str(subs), "--out", str(site), "--human", str(report)]) == 0
    index = (site / "index.html").read_text()
    assert '<h2 id="human">Human evaluation</h2>' in index and "ann (9)" in index
    assert json.loads((site / "leaderboard.json").read_text())["human"]["raters"] == {"ann": ITEMS}
    (tmp_path / "bad.json").write_text("[]")
    assert leaderboard(["build", str(subs), "--out", str(site), "--human", str(tmp_path / "bad.json")]) == 2
