"""The WSGI entry point gunicorn imports: the one place the API app is built from `load_settings()` at import."""

from api.app import create_app
from store.settings import load_settings

application = create_app(load_settings())
