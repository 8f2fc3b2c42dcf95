"""`trainyard run SPEC.json`: train in this process, no service — same spec, same result as a job.

Core is imported inside the command, so `import trainyard.client` stays light for scripts.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from trainyard.client.progress import ProgressBar


class UsageError(Exception):
    """A command-line problem found before training: exit 2, with the result's error code."""

    def __init__(self, message: str, code: str = "invalid_spec"):
        super().__init__(message)
        self.code = code


def _read_spec(path: str) -> dict:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read spec file {path!r}: {exc.strerror}", "spec_file_error") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None


def _check_writable(path: str) -> None:
    """Refuse an unwritable --save path before training, not after it (the model would be lost)."""
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"--save {path}: is a directory; give a file name", "invalid_save_path")
    if not target.parent.is_dir():
        raise UsageError(f"--save {path}: folder {str(target.parent)!r} does not exist", "invalid_save_path")
    if not os.access(target if target.exists() else target.parent, os.W_OK):
        raise UsageError(f"--save {path}: permission denied", "invalid_save_path")


def run_command(spec_path: str, *, save: str | None = None, quiet: bool = False, as_json: bool | None = None) -> int:
    """Train the spec in `spec_path`; print the result JSON as the last stdout line, or a summary at a terminal.

    `as_json` None: the JSON line unless stdout is a terminal (scripts and pipes always get it). Exit code 0 if it
    succeeded, 1 if the spec is invalid or training failed, 2 if the spec file or the --save path cannot be used.
    """
    from trainyard.core.callbacks import Callbacks
    from trainyard.core.errors import TrainyardError
    from trainyard.core.job import train_job
    from trainyard.core.jsonsafe import json_safe
    from trainyard.core.provenance import versions
    from trainyard.core.spec import normalised
    from trainyard.core.stopping import stop_reason
    from trainyard.core.validate import validate_spec

    result: dict = {"status": "failed", "metrics": None, "error": None, "history": [], "versions": versions()}
    bar = None if quiet else ProgressBar(label=Path(spec_path).stem)
    code = 1
    try:
        if save:
            _check_writable(save)
        spec = validate_spec(_read_spec(spec_path))
        if spec.dataset.path is not None:  # a relative data path is relative to the spec file
            given = spec.dataset.path
            spec.dataset.path = str((Path(spec_path).parent / Path(given).expanduser()).absolute())
            if not Path(spec.dataset.path).exists():
                from trainyard.core.errors import DatasetError

                raise DatasetError(f"dataset.path {given!r}: no such file {spec.dataset.path}"
                                   + ("" if Path(given).expanduser().is_absolute()
                                      else " (a relative path is relative to the spec file's folder)"))
        epochs = spec.training.epochs

        def on_epoch(row: dict) -> None:
            result["history"].append(row)
            if bar:
                bar.update({**row, "epochs": epochs}, force=row["epoch"] == epochs)

        trained = train_job(spec, Callbacks(on_epoch=on_epoch))
        result.update(status="succeeded", metrics=trained.metrics, history=trained.history,
                      versions=trained.versions, spec=normalised(spec))
        result["stop_reason"] = stop_reason(result["spec"], len(trained.history))
        if bar and trained.history:  # an early stop ends before the last epoch: still show where it ended, and why
            bar.update({**trained.history[-1], "epochs": epochs, "stop_reason": result["stop_reason"]}, force=True)
        if save:
            Path(save).write_bytes(trained.model)
        code = 0
    except UsageError as exc:
        result["error"], code = {"code": exc.code, "message": str(exc)}, 2
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
    if as_json is None:
        as_json = not sys.stdout.isatty()
    if as_json:
        print(json.dumps(json_safe(result)))
        if result["error"] and not quiet:
            print(f"trainyard run: {result['error']['message']}", file=sys.stderr)
    else:
        print(summary(Path(spec_path).stem, result, save))
    return code


def summary(label: str, result: dict, save: str | None) -> str:
    """The result for a person at a terminal: status, epochs, final metrics, the model file, what went wrong."""
    from trainyard.client.output import format_number

    history = result.get("history") or []
    lines = [f"{label}: {result['status']}" + (f" after {len(history)} epochs" if history else "")
             + (f" in {history[-1]['time']:.1f} s" if history and isinstance(history[-1].get("time"), float) else "")]
    if result.get("stop_reason"):
        lines.append(f"  {result['stop_reason']}")
    metrics = {k: v for k, v in (result.get("metrics") or {}).items() if isinstance(v, (int, float)) or v is None}
    if metrics:
        lines.append("  " + "  ".join(f"{k} {format_number(v)}" for k, v in metrics.items()))
    if result["status"] == "succeeded" and save:
        lines.append(f"  model saved to {save}")
    error = result.get("error")
    if error:
        lines.append(f"  error {error.get('code')}: {error.get('message')}")
        lines.extend(f"    {e.get('loc')}: {e.get('msg')}" for e in error.get("errors") or [] if isinstance(e, dict)
                     and e.get("msg") and e.get("msg") not in error.get("message", ""))
    lines.append("  (the full result as one JSON line: trainyard run --json, or when stdout is not a terminal)")
    return "\n".join(lines)
