"""The HTTP API (DESIGN §6): a Flask app factory, one blueprint per resource, problem+json errors."""
