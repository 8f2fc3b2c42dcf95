"""Where the API lives: the `/api/v1` prefix every route is under, and the routes that take an upload's body limit.

A leaf: the factory (api.app), the blueprints and the shared modules (api.errors, api.views …) import these
names from here, so none of them needs to import another to learn them.
"""

from __future__ import annotations

PREFIX = "/api/v1"
# Endpoints whose body may be up to max_upload_bytes; every other body is held to max_request_bytes.
UPLOAD_ENDPOINTS = frozenset({"datasets.upload_dataset"})
