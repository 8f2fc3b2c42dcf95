"""`trainyard run SPEC.json`: train in this process, no service — same spec, same result as a job.

Core is imported inside the command, so `import client` stays light for scripts.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from client.progress import ProgressBar


class UsageError(Exception):
    """A command-line problem found before training: exit 2."""


def _read_spec(path: str) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read spec file {path!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _check_writable(path: str) -> None:
    """Refuse an unwritable --save path before training, not after it (the model would be lost)."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"--save {path}: is a directory; give a file name")
    if not target.parent.is_dir():
        raise UsageError(f"--save {path}: folder {str(target.parent)!r} does not exist")
    if not os.access(target if target.exists() else target.parent, os.W_OK):
        raise UsageError(f"--save {path}: permission denied")


def run_command(spec_path: str, *, save: str | None = None, quiet: bool = False) -> int:
    """Train the spec in `spec_path`; print the result JSON as the last stdout line.

    Exit code 0 if it succeeded, 1 if the spec is invalid or training failed, 2 if the
    spec file or the --save path cannot be used.
    """
    from core.backends.base import Callbacks
    from core.errors import TrainyardError
    from core.job import json_safe, train_job, versions
    from core.spec import normalised
    from core.validate import validate_spec

    result: dict = {"status": "failed", "metrics": None, "error": None, "history": [], "versions": versions()}
    bar = None if quiet else ProgressBar(label=Path(spec_path).stem)
    code = 1
    try:
        if save:
            _check_writable(save)
        spec = validate_spec(_read_spec(spec_path))
        if spec.dataset.path is not None:  # a relative data path is relative to the spec file
            spec.dataset.path = str(Path(spec_path).parent / Path(spec.dataset.path).expanduser())
        epochs = spec.training.epochs

        def on_epoch(row: dict) -> None:
            result["history"].append(row)
            if bar:
                bar.update({**row, "epochs": epochs}, force=row["epoch"] == epochs)

        trained = train_job(spec, Callbacks(on_epoch=on_epoch))
        if bar and trained.history:  # an early stop ends before the last epoch: still show where it ended
            bar.update({**trained.history[-1], "epochs": epochs}, force=True)
        result.update(status="succeeded", metrics=trained.metrics, history=trained.history,
                      versions=trained.versions, spec=normalised(spec))
        if save:
            Path(save).write_bytes(trained.model)
        code = 0
    except UsageError as exc:
        result["error"], code = {"code": "invalid_spec", "message": str(exc)}, 2
    except TrainyardError as exc:
        result["error"] = exc.to_dict()
    except KeyboardInterrupt:
        result.update(status="cancelled", error={"code": "cancelled", "message": "interrupted"})
    except Exception as exc:  # a bug or an OS error: still end with the result line the contract promises
        traceback.print_exc()
        result["error"] = {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}
    finally:
        if bar:
            bar.close()
    print(json.dumps(json_safe(result)))
    if result["error"] and not quiet:
        print(f"trainyard run: {result['error']['message']}", file=sys.stderr)
    return code
