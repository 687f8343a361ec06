"""The rating app (Flask): a rater gives their name, then rates one item after another until the study is done.

Each page shows the context (every concept's picture, name and dialogue, as the models saw them), the new query
image, and two captions labelled only "left" and "right": the systems are never named on the page, and the side
each one is on comes from the study (`Study.left`), not from the form, so the side recorded is the side shown. The
rater chooses left, tie or right on each criterion, with the mouse or the keys shown, and the rating is stored before
the next item is served. A rater who returns (after closing the browser or a restart of the server) continues with
their first unrated item.

Security: the app binds to loopback by default; every response forbids outside resources and framing; a POST whose
Origin is not the app's own (another site, or `null`, which a page hiding its origin sends) is refused; images are
served only by the opaque names the study lists.
"""

from __future__ import annotations

import re
from importlib import resources

from flask import Flask, abort, redirect, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from covip.leaderboard.human.store import Rating, Store
from covip.leaderboard.human.study import CHOICES, CRITERIA, Study

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
RATER = re.compile(r"^[^\x00-\x1f\x7f]{1,80}$")


def rater_name(raw: str | None) -> str:
    """The rater's name from a request, stripped; 400 when missing or unusable."""
    name = (raw or "").strip()
    if not RATER.match(name):
        abort(400, "a rater name is 1 to 80 characters, without control characters")
    return name


def create_app(study: Study, store: Store) -> Flask:
    """The app over `study`, keeping ratings in `store` (which must already hold this study)."""
    static = str(resources.files("covip.leaderboard").joinpath("static"))
    app = Flask(__name__, static_folder=static, static_url_path="/assets")

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"  # so that our own forms carry their Origin
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.before_request
    def same_origin() -> None:
        origin = request.headers.get("Origin")
        if request.method == "POST" and origin and origin.rstrip("/") != request.host_url.rstrip("/"):
            abort(403, "a form from another site")

    @app.get("/")
    def start() -> str:
        return render_template("start.html", study=study, criteria=CRITERIA)

    @app.get("/rate")
    def rate() -> str:
        rater = rater_name(request.args.get("rater"))
        done = {r.item for r in store.ratings(rater)}
        remaining = [item for item in study.order(rater) if item.id not in done]
        progress = {"done": len(study.items) - len(remaining), "total": len(study.items)}
        if not remaining:
            return render_template("done.html", rater=rater, progress=progress)
        item = remaining[0]
        left = study.left(rater, item)
        right = item.b if left == item.a else item.a
        return render_template(
            "rate.html",
            rater=rater,
            item=item,
            progress=progress,
            captions={"left": study.caption(item, left), "right": study.caption(item, right)},
            query=study.query_image(item),
            context=study.context(item),
            criteria=CRITERIA,
        )

    @app.post("/rate")
    def save() -> Response:
        rater = rater_name(request.form.get("rater"))
        item = study.by_id.get(request.form.get("item", ""))
        if item is None:
            abort(400, "no such item in this study")
        choices = {c.key: request.form.get(c.key, "") for c in CRITERIA}
        if any(choice not in CHOICES for choice in choices.values()):
            abort(400, f"each criterion needs one of {', '.join(CHOICES)}")
        left = study.left(rater, item)
        store.save(Rating(rater, item.id, left, item.b if left == item.a else item.a, choices))
        return redirect(url_for("rate", rater=rater), code=303)

    @app.get("/img/<name>")
    def image(name: str) -> Response:
        path = study.images.get(name)
        if path is None:
            abort(404)
        return send_file(path)

    return app
