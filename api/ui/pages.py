"""The dashboard's pages: `/` (the service root), `/ui/signin`, `/ui/signout` and the pages of jobs, a job, compare,
sweeps, workers and datasets, plus their static files.

Pages are rendered by Jinja (autoescaped) with what the server must decide — who is signed in, whether a job or
sweep is theirs (another user's is "not found", as in the API), the CSRF token — and their small scripts
(api/ui/static/*.js, no inline script) read and change everything else through the JSON API with the session
cookie (api.auth accepts it; writes need the CSRF header as well).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, redirect, render_template, request, url_for

from trainyard.api import throttle
from trainyard.api.errors import ApiError
from trainyard.api.ui import assets, sessions
from trainyard.store import jobs as job_store
from trainyard.store import sweeps as sweep_store
from trainyard.store.errors import NotFound
from trainyard.store.tokens import WRITE

bp = Blueprint("ui", __name__, template_folder="templates")

# Scripts and styles only from this server (the plotly.js bundle too), nothing inline: no 'unsafe-inline' for
# scripts. plotly.js sets style attributes and adds a stylesheet of its own at run time, hence styles' 'unsafe-inline'.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
# The sweep page's parallel coordinates are WebGL, drawn by regl inside plotly.js, which compiles its shaders' glue
# code with Function(): that page alone also allows 'unsafe-eval' (still no inline script).
EVAL_PAGES = {"ui.sweep"}
OPEN = {"ui.root", "ui.signin", "ui.signin_post", "ui.static_file"}  # what needs no session


def _secure() -> bool:
    return request.is_secure


@bp.before_request
def _session() -> Response | None:
    """Who is signed in (g.user_id, g.scopes, g.csrf); a page without a session goes to the sign-in page."""
    from trainyard.api import auth

    g.signed_in = False
    if request.endpoint == "ui.static_file":
        return None  # public files: no session lookup, so they may be cached (api.headers: no-store once signed in)
    throttle.check_client()
    secret = request.cookies.get(sessions.COOKIE)
    if secret:
        try:
            info = auth.verify(secret)
        except ApiError:
            info = None
        if info is not None:
            g.user_id, g.scopes, g.csrf, g.signed_in = info.user_id, info.scopes, sessions.csrf_token(secret), True
    if not g.signed_in and request.endpoint not in OPEN:
        return redirect(url_for("ui.signin", next=request.full_path if request.method == "GET" else None))
    if request.method == "POST" and request.endpoint not in OPEN:
        if not sessions.csrf_ok(secret, request.form.get(sessions.CSRF_FIELD)):
            return _page("error.html", 403, title="Refused",
                         message="This form did not carry the page's CSRF token. Reload the page and try again.")
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    if response.mimetype == "text/html":
        csp = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-eval'") if request.endpoint in EVAL_PAGES else CSP
        response.headers["Content-Security-Policy"] = csp
        response.headers["Cache-Control"] = "no-store"
    return response


def _page(template: str, status: int = 200, **context) -> tuple[str, int]:
    can_write = WRITE in g.get("scopes", ())
    return render_template(template, csrf=g.get("csrf", ""), signed_in=g.get("signed_in", False),
                           can_write=can_write, asset=_asset_url, **context), status


def _asset_url(name: str) -> str:
    return url_for("ui.static_file", name=name, v=assets.version(name))


def _safe_next(target: str | None) -> str:
    """Only a path of this dashboard (no other host, no scheme) after signing in."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("ui.jobs")


@bp.get("/")
def root():
    """The service root: the dashboard (its jobs page, or sign-in first)."""
    return redirect(url_for("ui.jobs") if g.signed_in else url_for("ui.signin"))


@bp.get("/ui/")
def ui_root():
    return redirect(url_for("ui.jobs"))


@bp.get("/ui/signin")
def signin():
    from trainyard.api.context import state

    return _page("signin.html", code=request.args.get("code", ""), next=_safe_next(request.args.get("next")),
                 auth=state().settings.auth)


@bp.post("/ui/signin")
def signin_post():
    """Sign in with a token (or a one-time code): a new session cookie; the token itself is never kept."""
    from trainyard.api.auth import LOCAL_USER
    from trainyard.api.context import state, writing
    from trainyard.store.tokens import get_or_create_user

    form = request.form
    target = _safe_next(form.get("next"))
    with writing() as db:
        if form.get("code"):
            secret = sessions.redeem_code(db, form["code"])
            failure = "This sign-in link was used already or has expired. Sign in with a token instead."
        elif not state().settings.auth:
            secret = sessions.start_session(db, user_id=get_or_create_user(session=db, name=LOCAL_USER).id,
                                            scopes="read write")
            failure = ""
        else:
            secret = sessions.sign_in_with_token(db, form.get("token", ""))
            failure = "That token is unknown, revoked or expired."
    if secret is None:  # a 401: counted against the address's budget of failed authentications (api.throttle)
        return _page("signin.html", 401, code="", next=target, auth=state().settings.auth, error=failure)
    response = redirect(target, 303)
    response.set_cookie(sessions.COOKIE, secret, max_age=sessions.SESSION_HOURS * 3600, httponly=True,
                        samesite="Strict", secure=_secure(), path="/")
    return response


@bp.post("/ui/signout")
def signout():
    from trainyard.api.context import state, writing
    from trainyard.store.tokens import digest

    secret = request.cookies.get(sessions.COOKIE, "")
    with writing() as db:
        sessions.end_session(db, secret)
    state().tokens.forget(digest(secret))
    response = redirect(url_for("ui.signin"), 303)
    response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="Strict", secure=_secure())
    return response


@bp.get("/ui/jobs")
def jobs():
    from trainyard.api.jobs import STATUSES
    from trainyard.core.spec.vocabulary import BACKENDS

    return _page("jobs.html", title="Jobs", nav="jobs", statuses=STATUSES, backends=BACKENDS)


@bp.get("/ui/jobs/<job_id>")
def job(job_id: str):
    from trainyard.api.context import session

    try:
        found = job_store.get_job(session=session(), owner=g.user_id, job_id=job_id)
    except NotFound:
        return _not_found("job", job_id)
    return _page("job.html", title=found.name or found.id, nav="jobs", job_id=found.id, job_name=found.name)


@bp.get("/ui/compare")
def compare():
    return _page("compare.html", title="Compare", nav="compare")


@bp.get("/ui/sweeps")
def sweeps():
    return _page("sweeps.html", title="Sweeps", nav="sweeps")


@bp.get("/ui/sweeps/<sweep_id>")
def sweep(sweep_id: str):
    from trainyard.api.context import session

    try:
        found = sweep_store.get_sweep(session=session(), owner=g.user_id, sweep_id=sweep_id)
    except NotFound:
        return _not_found("sweep", sweep_id)
    return _page("sweep.html", title=found.name or found.id, nav="sweeps", sweep_id=found.id)


@bp.get("/ui/workers")
def workers():
    from trainyard.api.context import session

    return _page("workers.html", title="Workers and queues", nav="workers",
                 queues=queue_depths(session(), g.user_id))


@bp.get("/ui/workers/queues")
def queues():
    """The queue table of the workers page as JSON (its script refreshes it)."""
    from trainyard.api.context import session

    return {"items": queue_depths(session(), g.user_id)}


def queue_depths(db, owner: str) -> list[dict]:
    """Per queue (device): jobs queued by everyone (a count only, as /metrics shows it), and the caller's queued
    and running jobs."""
    from sqlalchemy import case, func, select

    from trainyard.store.models import QUEUED, RUNNING, Job

    mine = Job.owner_id == owner
    rows = db.execute(select(Job.device, func.count(),
                             func.sum(case((mine, 1), else_=0)),
                             ).where(Job.status == QUEUED).group_by(Job.device)).all()
    running = dict(db.execute(select(Job.device, func.count()).where(Job.status == RUNNING, mine)
                              .group_by(Job.device)).all())
    depth = {device: (int(total), int(own or 0)) for device, total, own in rows}
    return [{"name": device, "queued": depth.get(device, (0, 0))[0], "mine": depth.get(device, (0, 0))[1],
             "running_mine": running.get(device, 0)} for device in sorted(set(depth) | set(running) | {"cpu", "gpu"})]


@bp.get("/ui/datasets")
def datasets():
    return _page("datasets.html", title="Datasets", nav="datasets")


def _not_found(what: str, ident: str):
    return _page("error.html", 404, title="Not found", message=f"There is no {what} {ident!r} of yours.")


@bp.get("/ui/static/<name>")
def static_file(name: str):
    """One of the dashboard's files, by name from a fixed list; cached for a year (its URL carries its hash)."""
    path = assets.files().get(name)
    if path is None:
        abort(404)
    response = Response(assets.content(name), mimetype=assets.TYPES[path.suffix])
    if request.args.get("v") == assets.version(name):
        response.headers["Cache-Control"] = f"public, max-age={assets.YEAR}, immutable"
    return response
