"""`covip-human`: the paper's human evaluation, done right: a local web app where raters compare two systems' captions
of the same sample (context awareness; faithfulness to the new image), and a report of what they said.

- `study.py`: the study (its systems, items, per-rater order and left/right sides) built from two or more runs;
- `store.py`: the SQLite file that keeps the study and every rating, written as each rating is given;
- `app.py`: the Flask app raters use;
- `report.py`: win/tie/loss with intervals, inter-rater agreement, and agreement with the LLM judge;
- `cli.py`: `covip-human serve` and `covip-human report`.
"""
