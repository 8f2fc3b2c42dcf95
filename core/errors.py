"""The exceptions core raises, each with the stable error code of DESIGN §5."""

from __future__ import annotations

import zipfile
import zlib

# What reading a member of a damaged or crafted zip archive raises besides KeyError / ValueError: a bad
# archive, an unsupported compression method (NotImplementedError), an encrypted member (RuntimeError),
# a corrupt or truncated deflate stream (zlib.error, EOFError), a lying offset (OSError).
ZIP_READ_ERRORS = (zipfile.BadZipFile, NotImplementedError, RuntimeError, zlib.error, EOFError, OSError)


class TrainyardError(Exception):
    """Base class: every failure a job can end with carries a stable `code`."""

    code = "internal"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class SpecError(TrainyardError):
    """The job spec is invalid; `errors` lists `{"loc": "model.layers[2].activation", "msg": ...}`."""

    code = "invalid_spec"

    def __init__(self, errors: list[dict] | str, loc: str = ""):
        if isinstance(errors, str):
            errors = [{"loc": loc, "msg": errors}]
        self.errors = errors
        super().__init__("; ".join(f"{e['loc']}: {e['msg']}" if e["loc"] else e["msg"] for e in errors))

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "errors": self.errors}


class DatasetError(TrainyardError):
    """The dataset cannot be read or does not fit the spec."""

    code = "dataset_error"


class Diverged(TrainyardError):
    """The loss became NaN or infinite."""

    code = "diverged"

    def __init__(self, epoch: int, message: str | None = None):
        self.epoch = epoch
        super().__init__(message or f"loss became non-finite in epoch {epoch}")

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "epoch": self.epoch}


class Cancelled(TrainyardError):
    """Training stopped because cancellation was requested."""

    code = "cancelled"


class TimedOut(TrainyardError):
    """Training ran past its wall-clock limit."""

    code = "timeout"


class ModelFileError(TrainyardError):
    """A model file is corrupt, foreign or of an unsupported format version."""

    code = "invalid_model"
