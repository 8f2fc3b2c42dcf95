"""`trainyard run SPEC.json`: train in this process, no service — same spec, same result as a job.

Core is imported inside the command, so `import client` stays light for scripts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from client.progress import ProgressBar


def _read_spec(path: str) -> dict:
    from core.errors import SpecError

    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {path!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def run_command(spec_path: str, *, save: str | None = None, quiet: bool = False) -> int:
    """Train the spec in `spec_path`; print the result JSON as the last stdout line; 0 if it succeeded."""
    from core.backends.base import Callbacks
    from core.errors import TrainyardError
    from core.job import json_safe, train_job, versions
    from core.spec import normalised
    from core.validate import validate_spec

    result: dict = {"status": "failed", "metrics": None, "error": None, "history": [], "versions": versions()}
    bar = None if quiet else ProgressBar(label=Path(spec_path).stem)
    try:
        spec = validate_spec(_read_spec(spec_path))
        if spec.dataset.path is not None:  # a relative data path is relative to the spec file
            spec.dataset.path = str(Path(spec_path).parent / Path(spec.dataset.path).expanduser())
        epochs = spec.training.epochs

        def on_epoch(row: dict) -> None:
            result["history"].append(row)
            if bar:
                bar.update({**row, "epochs": epochs}, force=row["epoch"] == epochs)

        trained = train_job(spec, Callbacks(on_epoch=on_epoch))
        result.update(status="succeeded", metrics=trained.metrics, history=trained.history,
                      versions=trained.versions, spec=normalised(spec))
        if save:
            Path(save).write_bytes(trained.model)
    except TrainyardError as exc:
        result["error"] = exc.to_dict()
    except KeyboardInterrupt:
        result.update(status="cancelled", error={"code": "cancelled", "message": "interrupted"})
    finally:
        if bar:
            bar.close()
    print(json.dumps(json_safe(result)))
    if result["error"] and not quiet:
        print(f"trainyard run: {result['error']['message']}", file=sys.stderr)
    return 0 if result["status"] == "succeeded" else 1
