"""The SQL database: settings, engine and sessions, models, and the repository functions every process uses."""
