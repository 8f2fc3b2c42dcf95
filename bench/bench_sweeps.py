"""Issue 9's sweep figures, measured side by side (run by hand; minutes).

    .venv/bin/python bench/bench_sweeps.py                 # SQLite + file broker
    .venv/bin/python bench/bench_sweeps.py --postgres      # PostgreSQL + Redis
    .venv/bin/python bench/bench_sweeps.py --trials 40 --epochs 60 --skip-pruning
    .venv/bin/python bench/bench_sweeps.py --skip-local   # the pruning comparison only (2.)

1. Service vs local: the sweep of examples/digits_sweep.json (TPE, seed 0, `--trials` trials, 2 at once, no
   pruner) on a real service — API, 2 worker processes (concurrency 1 each) and the reconciler, whose thread
   runs the sweep controller — timed from POST /sweeps to the sweep's end. Then the *same* parameter sets (each
   trial's, enqueued in order with `study.enqueue_trial`) run by a plain local Optuna study with `n_jobs=2`,
   each trial through `trainyard run`'s in-process path (`validate_spec` + `core.job.train_job`, as
   client/local_run.py does). Goal: service / local wall clock <= 1.1. Optuna's `n_jobs` runs threads, which share
   one interpreter lock; as a floor for the service's own overhead the same trials also run in 2 local processes
   (no sampler, no database).
2. Pruning: the same sweep (the same request, TPE seed `--seed`, default 0; objective `--metric`, default the
   example's val_accuracy, and `--direction`; `--validation-split`, default the example's 0.1) with longer trials
   (`--prune-epochs`, default 200) without a pruner and with each pruner of `--pruners` (default: successive
   halving 2/4, 10/2 and 20/3 (min epochs / reduction factor), and median with warm-up 10): best objective (goal:
   within 0.005 of the unpruned one) and epochs trained, every trial's last epoch summed (goal: <= 50 %). With
   `--lag`, for each pruned trial: the first epoch at which its pruner (core.sweeps.search.should_prune, the
   controller's code) says "prune" against the trials numbered before it as their rows ended, the epoch its
   decision was taken at (`error.epoch`) and the epochs it trained.

       .venv/bin/python bench/bench_sweeps.py --skip-local --lag --seed 1 \
           --pruners '[{"name": "successive_halving", "min_epochs": 10, "reduction_factor": 2}]'
       .venv/bin/python bench/bench_sweeps.py --skip-local --seed 2 --validation-split 0.3   # 1/540 per sample

The base spec says `"reuse": false`, so no trial is answered from an earlier identical job (store.reuse).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_hostile import REDIS_URL, free_port, start, wait_healthy  # noqa: E402

PRUNERS = ({"name": "successive_halving", "min_epochs": 2, "reduction_factor": 4},
           {"name": "successive_halving", "min_epochs": 10, "reduction_factor": 2},
           {"name": "successive_halving", "min_epochs": 20, "reduction_factor": 3},
           {"name": "median", "warmup_epochs": 10, "startup_trials": 5})
SWEEP = json.loads((ROOT / "examples" / "digits_sweep.json").read_text())


@contextlib.contextmanager
def stack(postgres: bool, workers: int = 2, **changes) -> Iterator[tuple[str, dict]]:
    """API, `workers` worker processes and the reconciler on a scratch database: `(url, auth headers)`."""
    from bench_api import scratch_postgres
    from trainyard.store.db import make_engine, make_sessionmaker, session_scope
    from trainyard.store.migrate import upgrade
    from trainyard.store.settings import Settings
    from trainyard.store.tokens import create_token

    home = Path(tempfile.mkdtemp(prefix="trainyard-bench-sweeps-"))
    url_db, drop = scratch_postgres() if postgres else ("", lambda: None)
    settings = Settings(home=home, database_url=url_db, broker_url=REDIS_URL if postgres else "",
                        broker_namespace=f"bench-{uuid.uuid4().hex}:", rate_limit_per_second=1e6,
                        rate_limit_burst=10**6, **changes)
    upgrade(settings)
    engine = make_engine(settings)
    with session_scope(make_sessionmaker(engine)) as s:
        token = create_token(session=s, user_name="bench")[0]
    engine.dispose()
    port = free_port()
    procs = [start(["-m", "trainyard.api.serve", "--port", str(port), "--workers", "1"], settings, home / "api.log"),
             start(["-m", "trainyard.worker.reconciler"], settings, home / "reconciler.log")]
    procs += [start(["-m", "trainyard.worker.main", "--queues", "cpu", "--concurrency", "1"], settings,
                    home / f"worker{i}.log") for i in range(workers)]
    url = f"http://127.0.0.1:{port}/api/v1"
    try:
        wait_healthy(url, home)
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 120
        while len(requests.get(url + "/workers", headers=headers, timeout=10).json()["items"]) < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"the workers did not start; see {home}")
            time.sleep(0.2)
        yield url, headers
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except Exception:  # noqa: BLE001 — a process that will not stop is killed
                p.kill()
        drop()


def request_for(trials: int, epochs: int, pruner: dict, seed: int = 0, metric: str | None = None,
                direction: str | None = None, validation_split: float | None = None) -> dict:
    """The example's sweep with these settings; `None` keeps the example's (direction: minimise a `*loss`)."""
    sweep = copy.deepcopy(SWEEP)
    sweep.update(trials=trials, parallel=2, pruner=pruner)
    sweep["sampler"]["seed"] = seed
    if metric is not None or direction is not None:
        metric = metric or sweep["objective"]["metric"]
        direction = direction or ("minimize" if metric.endswith("loss") else "maximize")
        sweep["objective"] = {"metric": metric, "direction": direction}
    if validation_split is not None:
        sweep["base"]["dataset"]["validation_split"] = validation_split
    sweep["base"]["training"]["epochs"] = epochs
    sweep["base"]["reuse"] = False
    return sweep


def run_service_sweep(url: str, headers: dict, request: dict) -> dict:
    """POST the sweep and poll it every 20 ms until it ends: wall seconds, best, trials, epochs trained."""
    with requests.Session() as http:
        http.headers.update(headers)
        t0 = time.perf_counter()
        r = http.post(url + "/sweeps", json=request, timeout=60)
        if r.status_code != 201:
            raise SystemExit(f"POST /sweeps: {r.status_code} {r.text[:2000]}")
        sweep = r.json()
        while sweep["status"] not in ("succeeded", "failed", "cancelled"):
            time.sleep(0.02)
            sweep = http.get(f"{url}/sweeps/{sweep['id']}", timeout=60).json()
        wall = time.perf_counter() - t0
        trials, params = [], {"limit": 500}
        while True:
            page = http.get(f"{url}/sweeps/{sweep['id']}/trials", params=params, timeout=60).json()
            trials += page["items"]
            if not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
    if sweep["status"] != "succeeded":
        raise SystemExit(f"sweep {sweep['id']} {sweep['status']}: {sweep.get('error')}")
    return {"wall": wall, "best": sweep["best"]["value"], "trials": trials,
            "epochs": sum(t["epoch"] or 0 for t in trials), "counts": sweep["counts"]}


def run_local_study(request: dict, trials: list[dict]) -> dict:
    """The same parameter sets through a local Optuna study (`n_jobs=2`), each trained in-process."""
    import optuna

    from trainyard.core.job import train_job
    from trainyard.core.sweeps.paths import apply
    from trainyard.core.validate import validate_spec

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric, base = request["objective"]["metric"], request["base"]
    epochs = []

    def objective(trial: optuna.Trial) -> float:
        params = {}
        for path, dim in request["space"].items():
            if "choice" in dim:
                params[path] = trial.suggest_categorical(path, dim["choice"])
            elif "int" in dim:
                params[path] = trial.suggest_int(path, *dim["int"], log=dim.get("log", False))
            else:
                params[path] = trial.suggest_float(path, *dim["float"], log=dim.get("log", False))
        result = train_job(validate_spec(apply(base, params)))
        epochs.append(len(result.history))
        return result.metrics[metric]

    study = optuna.create_study(direction=request["objective"]["direction"],
                                sampler=optuna.samplers.TPESampler(seed=request["sampler"]["seed"]))
    for t in sorted(trials, key=lambda t: t["trial"]):
        study.enqueue_trial(t["params"])
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=len(trials), n_jobs=2)
    return {"wall": time.perf_counter() - t0, "best": study.best_value, "epochs": sum(epochs)}


def _train_one(document: dict, metric: str) -> tuple[float, int]:
    from trainyard.core.job import train_job
    from trainyard.core.validate import validate_spec

    result = train_job(validate_spec(document))
    return result.metrics[metric], len(result.history)


def run_local_processes(request: dict, trials: list[dict]) -> dict:
    """A floor for the service's overhead: the same trials in 2 local processes, no sampler, no database."""
    from concurrent.futures import ProcessPoolExecutor

    from trainyard.core.sweeps.paths import apply

    documents = [apply(request["base"], t["params"]) for t in sorted(trials, key=lambda t: t["trial"])]
    metric = request["objective"]["metric"]
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_train_one, documents[:2], [metric] * 2))  # import numpy, scikit-learn and the data first
        t0 = time.perf_counter()
        results = list(pool.map(_train_one, documents, [metric] * len(documents)))
        wall = time.perf_counter() - t0
    best = max if request["objective"]["direction"] == "maximize" else min
    return {"wall": wall, "best": best(v for v, _ in results), "epochs": sum(n for _, n in results)}


def fetch_history(http, url: str, job_id: str, metric: str) -> dict[int, float]:
    """`{epoch: metric}` of a trial's whole history, through GET /jobs/{id}/history."""
    out, since = {}, 0
    while True:
        page = http.get(f"{url}/jobs/{job_id}/history", params={"since": since}, timeout=60).json()
        out.update({r["epoch"]: r[metric] for r in page["epochs"] if isinstance(r.get(metric), (int, float))})
        if not page.get("has_more"):
            return out
        since = page["next_since"]


def pruning_lag(url: str, headers: dict, request: dict, trials: list[dict]) -> dict:
    """For each pruned trial: the first epoch at which the sweep's pruner (core.sweeps.search.should_prune, the
    controller's own code) would have pruned it — judged against the trials numbered before it, as their rows
    ended — the epoch at which it was decided (`error.epoch`) and the epochs it trained (`epoch`)."""
    from trainyard.core.sweeps.request import parse_request
    from trainyard.core.sweeps.search import TrialRow, should_prune

    request = parse_request(request, max_trials=10**6, max_parallel=10**6, max_grid=10**9).as_json()  # defaults
    metric = request["objective"]["metric"]
    with requests.Session() as http:
        http.headers.update(headers)
        history = {t["trial"]: fetch_history(http, url, t["job_id"], metric) for t in trials}
    rows = {t["trial"]: TrialRow(t["trial"], t["state"], t["params"], t["value"], history[t["trial"]],
                                 (t["error"] or {}).get("epoch") if t["state"] == "pruned" else None)
            for t in trials}
    out = []
    for t in sorted(trials, key=lambda t: t["trial"]):
        if t["state"] != "pruned":
            continue
        decided, trained = t["error"]["epoch"], t["epoch"]
        earlier = [r for n, r in rows.items() if n < t["trial"]]
        first = None
        for e in sorted(history[t["trial"]]):
            if e > trained:
                break
            target = TrialRow(t["trial"], "running", t["params"], None,
                              {k: v for k, v in history[t["trial"]].items() if k <= e})
            if should_prune(request, earlier + [target], target):
                first = e
                break
        out.append({"trial": t["trial"], "first": first, "decided": decided, "trained": trained})
    return {"pruned": out, "trained": sum(p["trained"] for p in out), "decided": sum(p["decided"] for p in out),
            "first": sum(p["first"] if p["first"] is not None else p["trained"] for p in out)}


def report_lag(lag: dict, total: int) -> None:
    """One line: how many epochs pruned trials trained, beyond the decision and beyond the pruner's first 'prune'."""
    if not lag["pruned"]:
        return
    print(f"    pruned trials: {lag['trained']} epochs trained, {lag['decided']} up to the decision, "
          f"{lag['first']} up to the pruner's first 'prune' (of {total} in all); "
          f"trials at first/decided/trained: "
          + " ".join(f"{p['trial']}:{p['first']}/{p['decided']}/{p['trained']}" for p in lag["pruned"]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis instead of SQLite + file broker")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=60, help="epochs of each trial (digits_15.json: 60)")
    parser.add_argument("--prune-epochs", type=int, default=200,
                        help="epochs of each trial in the pruning comparison (default 200)")
    parser.add_argument("--sweep-interval", type=float, help="the controller's sweep_interval_seconds "
                                                             "(default: the service's default)")
    parser.add_argument("--skip-pruning", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--pruners", type=json.loads, help="a JSON list of pruner objects to compare (default: "
                                                           "PRUNERS: successive halving 2/4, 10/2, 20/3, median 10)")
    parser.add_argument("--seed", type=int, default=0, help="the TPE sampler's seed of the pruning comparison "
                                                              "(each pruned sweep and its unpruned one use it)")
    parser.add_argument("--metric", help="the objective of the pruning comparison (default: the example's, "
                                         "val_accuracy; a name ending in loss is minimised)")
    parser.add_argument("--direction", choices=("maximize", "minimize"),
                        help="the objective's direction (default: minimise a name ending in loss, else maximise)")
    parser.add_argument("--validation-split", type=float,
                        help="dataset.validation_split of the pruning comparison's trials (default: the example's "
                             "0.1, 180 of digits' 1,797 rows, so one sample = 0.0056 of val_accuracy; 0.3 = 540 "
                             "rows, 0.0019 a sample)")
    parser.add_argument("--lag", action="store_true", help="for each pruned trial, the epoch its pruner first said "
                                                          "'prune', the epoch it was decided and the epochs trained")
    args = parser.parse_args()
    layout = "PostgreSQL + Redis" if args.postgres else "SQLite + file broker"
    changes = {} if args.sweep_interval is None else {"sweep_interval_seconds": args.sweep_interval}
    print(f"{layout}: digits sweep, {args.trials} trials, TPE, 2 at once {changes or ''}", flush=True)
    with stack(args.postgres, **changes) as (url, headers):
        if not args.skip_local:
            plain = run_service_sweep(url, headers, request_for(args.trials, args.epochs, {"name": "none"}))
            report(f"service, {args.epochs} epochs", plain)
        if not args.skip_pruning:
            measured = {"seed": args.seed, "metric": args.metric, "direction": args.direction,
                        "validation_split": args.validation_split}
            full = run_service_sweep(url, headers, request_for(args.trials, args.prune_epochs, {"name": "none"},
                                                               **measured))
            objective = request_for(1, 1, {"name": "none"}, **measured)
            print(f"  pruning comparison: objective {objective['objective']}, validation_split "
                  f"{objective['base']['dataset']['validation_split']}", flush=True)
            report(f"service, {args.prune_epochs} epochs, TPE seed {args.seed}, no pruner", full)
            for pruner in args.pruners or PRUNERS:
                request = request_for(args.trials, args.prune_epochs, pruner, **measured)
                result = run_service_sweep(url, headers, request)
                settings = ",".join(f"{k}={v}" for k, v in pruner.items() if k != "name")
                report(f"service, {args.prune_epochs} ep, {pruner['name']} {settings}", result, full)
                if args.lag:
                    report_lag(pruning_lag(url, headers, request, result["trials"]), result["epochs"])
    if not args.skip_local:
        local = run_local_study(request_for(args.trials, args.epochs, {"name": "none"}), plain["trials"])
        report(f"local Optuna n_jobs=2, {args.epochs} epochs", local)
        print(f"  ratio service / local: {plain['wall'] / local['wall']:.2f} (goal <= 1.1)", flush=True)
        floor = run_local_processes(request_for(args.trials, args.epochs, {"name": "none"}), plain["trials"])
        report(f"2 local processes, no Optuna, {args.epochs} epochs", floor)
        print(f"  ratio service / 2 local processes: {plain['wall'] / floor['wall']:.2f}")


def report(what: str, result: dict, unpruned: dict | None = None) -> None:
    line = f"  {what:58s} {result['wall']:7.1f} s  best {result['best']:.4f}"
    if unpruned is not None:
        line += (f" ({result['best'] - unpruned['best']:+.4f})  epochs {result['epochs']} "
                 f"({100 * result['epochs'] / unpruned['epochs']:.0f} % of unpruned), "
                 f"{result['counts'].get('pruned', 0)} pruned, {result['counts'].get('succeeded', 0)} completed")
    else:
        line += f"  epochs {result['epochs']}"
    print(line, flush=True)


if __name__ == "__main__":
    main()
