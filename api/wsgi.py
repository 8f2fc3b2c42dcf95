"""The WSGI entry point gunicorn imports: the one place the API app is built from `load_settings()` at import."""

from trainyard.api.app import create_app
from trainyard.store.settings import load_settings

application = create_app(load_settings())
