"""`GET /jobs/{id}/model?format=…`: the backend's own model file (`native`, the default) or one ONNX graph."""

from __future__ import annotations

from trainyard.api.errors import ApiError, invalid
from trainyard.core.errors import ModelFileError

FORMATS = ("native", "onnx")


def requested_format(value: str | None) -> str:
    """The `format` query parameter, checked (422 naming it and the valid values)."""
    if value is None or value == "":
        return "native"
    if value not in FORMATS:
        shown = value if len(value) <= 40 and value.isprintable() else value[:40].encode("unicode_escape").decode() + "…"
        raise invalid([{"loc": "format", "msg": f"unknown model format {shown!r}; valid: {', '.join(FORMATS)}"}])
    return value


def onnx_model(model: bytes, name: str) -> bytes:
    """The ONNX graph of a stored model file of any backend (no TensorFlow); 409 where the file has no export."""
    from trainyard.core.export.onnx_graph import to_onnx
    from trainyard.core.export.stack import read_stack

    try:
        stack = read_stack(model)
    except ModelFileError as exc:
        raise ApiError(409, f"this model cannot be exported to ONNX: {exc.message}", kind="not-exportable") from None
    return to_onnx(stack, name=name)
