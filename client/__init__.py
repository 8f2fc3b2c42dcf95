"""trainyard's Python client and `trainyard` command line: only `requests`, never the service's packages."""

from trainyard.client.client import Client
from trainyard.client.errors import (ApiError, BadRequest, Conflict, ConnectionFailed, DatasetFileError, Forbidden,
                                     NotFound, PayloadTooLarge, RateLimited, ServerError, ServiceNotRunning,
                                     ServiceUnavailable, Unauthorized, UnsupportedMediaType, ValidationFailed,
                                     WaitTimeout)
from trainyard.client.models import Job

__all__ = ["ApiError", "BadRequest", "Client", "Conflict", "ConnectionFailed", "DatasetFileError", "Forbidden", "Job",
           "NotFound", "PayloadTooLarge", "RateLimited", "ServerError", "ServiceNotRunning", "ServiceUnavailable",
           "Unauthorized", "UnsupportedMediaType", "ValidationFailed", "WaitTimeout"]
