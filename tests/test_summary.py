"""The summary table recomputes scores from per-sample logs; hand-made runs with known numbers."""

import json

import pytest

from covip.leaderboard.summary import main


def record(sample_id, pos_right, pos_total, neg_d, neg_total, f1):
    verdicts = [
        {"qid": f"p{i}", "concept": 0, "positive": True, "gold": "A", "pred": "A" if i < pos_right else "B"}
        for i in range(pos_total)
    ]
    verdicts += [
        {"qid": f"n{i}", "concept": 1, "positive": False, "gold": "B", "pred": "D" if i < neg_d else "B"}
        for i in range(neg_total)
    ]
    return {
        "sample_id": sample_id,
        "verdicts": verdicts,
        "recognition_f1": f1,
        "judge": {"id": "rule:rule-v1:strict:x"},
    }


def write_run(root, model, tasks):
    root.mkdir(parents=True)
    results = {"config": {"model": model}, "results": {t: {} for t in tasks}}
    (root / "20260101_000000_results.json").write_text(json.dumps(results))
    for task, records in tasks.items():
        lines = "".join(json.dumps({"covip_record": r}) + "\n" for r in records)
        (root / f"20260101_000000_samples_{task}.jsonl").write_text(lines)


def test_summary_numbers(tmp_path, capsys):
    write_run(
        tmp_path / "m",
        "model_x",
        {
            "covip_caption_1c": [record("a", 3, 3, 6, 6, 1.0), record("b", 0, 3, 3, 6, 0.0)],
            "covip_caption_2c": [record("c", 3, 6, 12, 12, 0.5)],
            "covip_caption_1c_blind": [record("a", 0, 3, 6, 6, 0.0)],
        },
    )
    assert main(["summary", str(tmp_path)]) == 0
    table = json.loads((tmp_path / "summary.json").read_text())["model_x"]
    assert table["1c"]["acc_pos"] == pytest.approx(50.0)
    assert table["1c"]["acc_neg"] == pytest.approx(75.0)
    assert table["2c"]["acc_pos"] == pytest.approx(50.0)
    assert table["overall"]["acc_pos"] == pytest.approx(100 * 6 / 12)
    assert table["overall"]["acc_neg"] == pytest.approx(100 * 21 / 24)
    assert table["overall"]["recognition_f1"] == pytest.approx(0.5)
    assert table["blind"]["acc_pos"] == 0.0 and "noctx" not in table
    assert "| model_x |" in (tmp_path / "summary.md").read_text()


def test_missing_sample_log_is_an_error(tmp_path, capsys):
    write_run(tmp_path / "m", "model_x", {"covip_caption_1c": [record("a", 3, 3, 6, 6, 1.0)]})
    (tmp_path / "m" / "20260101_000000_samples_covip_caption_1c.jsonl").unlink()
    assert main(["summary", str(tmp_path)]) == 2
    assert "--log_samples" in capsys.readouterr().err
