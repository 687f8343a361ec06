"""`covip-leaderboard compare` and `compare-judges`, and the comparisons of the site, on real `lmms_eval` runs of the
built-in baselines: numbers checked against what lmms-eval logged, refusals of unlike runs, and known answers (an
identical run, a judge that always answers D)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fake_servers import openai_server
from leaderboard_edits import copy_run, lmms_run, read_rows, results_file

from covip.leaderboard.cli import main
from covip.tasks.cli.judge import main as covip_judge

pytest_plugins = ["leaderboard_runs"]
ALWAYS_D = "Answer: \\boxed{D}"
BUCKETS = ("1c", "2c", "3c", "4c")


@pytest.fixture(scope="module")
def lazy_server():
    """A judge that answers D to every question: it never credits a recalled memory."""
    with openai_server(lambda prompt: ALWAYS_D) as srv:
        yield srv


def lazy_options(srv) -> dict[str, str]:
    return {"model": "lazy-judge", "base_url": f"{srv.url}/v1", "cache": "off"}


@pytest.fixture(scope="module")
def lazy_run(tmp_path_factory, small_benchmark: Path, lazy_server) -> Path:
    """The oracle's covip_caption_3c run (as `real_runs["oracle_3c"]`), judged by the always-D judge."""
    out = tmp_path_factory.mktemp("lazy") / "run"
    args = ["--model", "covip_oracle", "--tasks", "covip_caption_3c"]
    return lmms_run(
        args, small_benchmark, out, COVIP_JUDGE="openai", COVIP_JUDGE_OPTIONS=json.dumps(lazy_options(lazy_server))
    )


def right(record: dict, qid: str, pred: str) -> bool:
    """A verdict's correctness, by the definition: the gold letter for a concept in the image, else D."""
    question = next(q for q in record["questions"] if q["qid"] == qid)
    return pred == (question["gold"] if question["concept"] in record["positives"] else "D")


def rights(row: dict) -> dict[str, bool]:
    record = row["covip_record"]
    return {v["qid"]: right(record, v["qid"], v["pred"]) for v in record["verdicts"]}


def compare(*args: str, code: int = 0) -> None:
    assert main(["compare", *args, "--resamples", "1000"]) == code


def test_identical_runs_differ_by_zero_with_p_1(real_runs, tmp_path: Path) -> None:
    a = copy_run(real_runs["retrieval"], tmp_path / "a", card={"name": "retrieval A"})
    b = copy_run(real_runs["retrieval"], tmp_path / "b", card={"name": "retrieval B"})
    compare(str(a), str(b), "--out", str(tmp_path / "out"))
    data = json.loads((tmp_path / "out" / "comparison.json").read_text())
    [pair] = data["pairs"]
    assert (pair["a"], pair["b"]) == ("retrieval A", "retrieval B") and len(pair["rows"]) == 3 * 5
    for row in pair["rows"]:
        for metric in ("acc_pos", "acc_neg", "recognition_f1"):
            assert row[metric]["diff"] == 0 and row[metric]["ci95"] == [0.0, 0.0], (row["control"], metric)
        assert row["mcnemar_pos"]["p"] == 1 == row["mcnemar_neg"]["p"]
        assert row["mcnemar_pos"]["a_only"] == 0 == row["mcnemar_pos"]["b_only"]
    page = (tmp_path / "out" / "covip_caption_2c.html").read_text()
    assert page.count('<section class="sample compared') == 2 and "compared differs" not in page
    assert "1000 resamples, seed 0" in (tmp_path / "out" / "index.html").read_text()


def test_two_baselines_compared_as_their_sample_logs_say(real_runs, tmp_path: Path, capsys) -> None:
    oracle, retrieval = real_runs["oracle"], real_runs["retrieval"]
    compare(str(oracle), str(retrieval), "--out", str(tmp_path / "out"))
    out = capsys.readouterr().out
    assert re.search(r"covip_retrieval - covip_oracle, overall \(8 samples\): Acc\+ [−+]?\d", out), out
    data = json.loads((tmp_path / "out" / "comparison.json").read_text())
    rows = {(r["control"], r["bucket"]): r for r in data["pairs"][0]["rows"]}
    assert set(rows) == {(c, b) for c in ("none", "blind", "noctx") for b in (*BUCKETS, "overall")}
    reported = {run: json.loads(results_file(run).read_text())["results"] for run in (oracle, retrieval)}
    for bucket in BUCKETS:
        task = f"covip_caption_{bucket}"
        row = rows[("none", bucket)]
        for metric in ("acc_pos", "acc_neg"):
            a, b = reported[oracle][task][f"{metric},none"], reported[retrieval][task][f"{metric},none"]
            assert (row[metric]["a"], row[metric]["b"]) == pytest.approx((a, b))
            assert row[metric]["diff"] == pytest.approx(b - a)
            low, high = row[metric]["ci95"]
            assert low <= row[metric]["diff"] <= high
        # McNemar's discordant questions, from the verdicts lmms-eval logged
        a_rows, b_rows = read_rows(oracle, task), read_rows(retrieval, task)
        a_only = b_only = 0
        for x, y in zip(a_rows, b_rows, strict=True):
            positives = {
                q["qid"] for q in x["covip_record"]["questions"] if q["concept"] in x["covip_record"]["positives"]
            }
            rx, ry = rights(x), rights(y)
            a_only += sum(rx[q] and not ry[q] for q in positives)
            b_only += sum(ry[q] and not rx[q] for q in positives)
        assert (row["mcnemar_pos"]["a_only"], row["mcnemar_pos"]["b_only"]) == (a_only, b_only)
    # the side-by-side page marks exactly the samples where some question was judged right for one run only
    a_rows, b_rows = read_rows(oracle, "covip_caption_4c"), read_rows(retrieval, "covip_caption_4c")
    differing = sum(rights(x) != rights(y) for x, y in zip(a_rows, b_rows, strict=True))
    page = (tmp_path / "out" / "covip_caption_4c.html").read_text()
    assert page.count('<section class="sample compared differs') == differing > 0
    assert page.count('<section class="sample compared') == len(a_rows)
    assert '<input type="radio" name="show" value="differs">' in page


def test_unlike_runs_are_refused_naming_the_difference(real_runs, other_data_run, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    compare(str(real_runs["oracle"]), str(other_data_run), "--out", str(out), code=2)
    assert "task covip_caption_1c: data fingerprints differ" in capsys.readouterr().err and not out.exists()
    compare(str(real_runs["oracle"]), str(real_runs["oracle_3c"]), "--out", str(out), code=2)
    assert "the captioning tasks differ: only in covip_oracle" in capsys.readouterr().err and not out.exists()
    compare(str(real_runs["oracle"]), "--out", str(out), code=2)
    assert "at least two runs" in capsys.readouterr().err
    compare(str(real_runs["oracle"]), str(tmp_path / "nowhere"), "--out", str(out), code=2)
    assert "not a run directory" in capsys.readouterr().err
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    compare(str(real_runs["oracle"]), str(real_runs["retrieval"]), "--out", str(out), code=2)
    assert "is not a comparison" in capsys.readouterr().err and (out / "precious.txt").read_text() == "keep"


def test_runs_of_two_judges_are_compared_only_on_purpose(real_runs, lazy_run, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    compare(str(real_runs["oracle_3c"]), str(lazy_run), "--out", str(out), code=2)
    err = capsys.readouterr().err
    assert "task covip_caption_3c: judges differ" in err and "--across-judges" in err and not out.exists()
    compare(str(real_runs["oracle_3c"]), str(lazy_run), "--out", str(out), "--across-judges")
    data = json.loads((out / "comparison.json").read_text())
    assert any("compared across judges on purpose" in note for note in data["notes"])
    [row] = data["pairs"][0]["rows"]  # one task: no pooled row
    positive = sum(len(r["covip_record"]["positives"]) * 3 for r in read_rows(lazy_run, "covip_caption_3c"))
    # the same captions; the always-D judge credits no recalled memory and every withheld one
    assert row["acc_pos"]["diff"] == -100 and row["acc_pos"]["ci95"] == [-100.0, -100.0]
    assert row["acc_neg"]["diff"] == 0 and row["mcnemar_neg"]["p"] == 1
    assert (row["mcnemar_pos"]["a_only"], row["mcnemar_pos"]["b_only"]) == (positive, 0)
    assert row["mcnemar_pos"]["p"] == pytest.approx(2 * 0.5**positive)
    assert "compared across judges on purpose" in (out / "index.html").read_text()


def rejudge(run: Path, out: Path, judge: str, *options: str) -> Path:
    args = ["score", str(run), "--judge", judge, "--out", str(out)]
    assert covip_judge(args + [a for o in options for a in ("--option", o)]) == 0
    return out


def test_two_judges_of_one_runs_captions(real_runs, lazy_server, tmp_path: Path, capsys) -> None:
    run = real_runs["oracle_3c"]
    same = rejudge(run, tmp_path / "rule", "rule")
    assert (
        main(["compare-judges", str(run), "--b", str(same), "--out", str(tmp_path / "o1"), "--resamples", "500"]) == 0
    )
    data = json.loads((tmp_path / "o1" / "comparison.json").read_text())
    for row in data["agreement"]:
        assert row["letters_agree"] == 1 and row["verdicts_agree"] == 1
        assert row["verdicts_kappa"] is None  # every verdict right for both: kappa undefined
    kappas = {row["questions"]: row["letters_kappa"] for row in data["agreement"]}
    assert kappas["positive questions (Acc+)"] == pytest.approx(1.0) and kappas["negative questions (Acc−)"] is None
    assert data["pairs"][0]["rows"][0]["acc_pos"]["diff"] == 0 and "recognition_f1" not in data["pairs"][0]["rows"][0]

    lazy = rejudge(run, tmp_path / "lazy", "openai", *(f"{k}={v}" for k, v in lazy_options(lazy_server).items()))
    assert main(["compare-judges", str(run), "--a", "run", "--b", str(lazy), "--out", str(tmp_path / "o2")]) == 0
    assert "same verdict" in capsys.readouterr().out
    data = json.loads((tmp_path / "o2" / "comparison.json").read_text())
    rows = {row["questions"]: row for row in data["agreement"]}
    records = [r["covip_record"] for r in read_rows(run, "covip_caption_3c")]
    n_pos = sum(3 * len(r["positives"]) for r in records)
    n_all = sum(len(r["questions"]) for r in records)
    pos, neg, every = rows["positive questions (Acc+)"], rows["negative questions (Acc−)"], rows["every question"]
    assert (pos["n"], pos["letters_agree"], pos["verdicts_agree"]) == (n_pos, 0, 0)
    assert pos["letters_kappa"] == pytest.approx(0) and pos["verdicts_kappa"] == pytest.approx(0)
    assert (neg["n"], neg["letters_agree"], neg["letters_kappa"]) == (n_all - n_pos, 1, None)
    # every question: agreement is the negative share; the rule judge's D rate equals it, so kappa is 0
    assert every["letters_agree"] == pytest.approx(1 - n_pos / n_all) and every["letters_kappa"] == pytest.approx(0)
    [row] = data["pairs"][0]["rows"]
    assert row["acc_pos"]["diff"] == -100 and row["acc_neg"]["diff"] == 0
    page = (tmp_path / "o2" / "covip_caption_3c.html").read_text()
    assert "Caption (the same on every side)" in page and "Agreement" in (tmp_path / "o2" / "index.html").read_text()


def test_judges_of_other_captions_are_refused(real_runs, tmp_path: Path, capsys) -> None:
    run = real_runs["oracle_3c"]
    rejudged = rejudge(run, tmp_path / "rule", "rule")
    [samples] = rejudged.glob("*_samples_covip_caption_3c.jsonl")
    lines = samples.read_text().splitlines()
    row = json.loads(lines[0])
    row["covip_record"]["caption"] += " And a pony."
    samples.write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    assert main(["compare-judges", str(run), "--b", str(rejudged), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{samples}: sample {row['covip_record']['sample_id']}: another caption than the run's" in err
    samples.unlink()
    assert main(["compare-judges", str(run), "--b", str(rejudged), "--out", str(tmp_path / "o")]) == 2
    assert "task covip_caption_3c of run" in (err := capsys.readouterr().err) and "file expected, found none" in err
    assert main(["compare-judges", str(run), "--b", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not a `covip-judge score` output" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_site_compares_each_table_and_links_it_from_every_model_page(real_runs, tmp_path: Path) -> None:
    names = ("oracle", "retrieval", "shortcut")
    for name in names:
        copy_run(real_runs[name], tmp_path / "subs" / name)
    out = tmp_path / "site"
    assert main(["build", str(tmp_path / "subs"), "--out", str(out)]) == 0
    data = json.loads((out / "leaderboard.json").read_text())
    assert data["cohorts"][0]["comparison"] == "compare/1/index.html"
    comparison = json.loads((out / "compare" / "1" / "comparison.json").read_text())
    assert len(comparison["pairs"]) == 3 and (out / "compare" / "1" / "covip_caption_2c_noctx.html").is_file()
    assert 'href="compare/1/index.html"' in (out / "index.html").read_text()
    models = {m["model"]: m for m in data["models"]}
    for name in names:
        folder = next(p for p in (out / "models").iterdir() if p.is_dir() and p.name.startswith(f"covip-{name}-"))
        assert 'href="../compare/1/covip_caption_3c.html"' in (out / "models" / f"{folder.name}.html").read_text()
        page = (folder / "covip_caption_3c.html").read_text()
        assert "How to read a sample" in page and 'value="differs"' in page and 'value="wrong"' in page
        rows = read_rows(real_runs[name], "covip_caption_3c")
        others = [read_rows(real_runs[o], "covip_caption_3c") for o in names if o != name]
        sections = page.split('<section class="sample')[1:]
        assert len(sections) == len(rows)
        for section, row, *other in zip(sections, rows, *others, strict=True):
            mine = rights(row)
            pictures = re.findall(r'<img src="\.\./\.\./img/[0-9a-f]+\.jpg"', section)
            assert len(pictures) == 1 + len(row["covip_record"]["names"])  # the query and every context picture
            marks = re.findall(r'<tr class="q( differs)?( wrong)?">', section)
            assert len(marks) == len(mine)
            for (differs, wrong), (qid, ok) in zip(marks, mine.items(), strict=True):
                assert bool(wrong) == (not ok), qid
                assert bool(differs) == any(rights(o)[qid] != ok for o in other), qid
        assert models[f"covip_{name}"]["cohort"] == 1


def test_a_model_alone_in_its_table_has_no_comparison(real_runs, tmp_path: Path) -> None:
    copy_run(real_runs["oracle"], tmp_path / "subs" / "oracle")
    out = tmp_path / "site"
    assert main(["build", str(tmp_path / "subs"), "--out", str(out)]) == 0
    assert (
        not (out / "compare").exists()
        and "comparison" not in json.loads((out / "leaderboard.json").read_text())["cohorts"][0]
    )
    page = next((out / "models").rglob("covip_caption_1c.html")).read_text()
    assert 'value="wrong"' in page and 'value="differs"' not in page and '<th scope="col">Others</th>' not in page
