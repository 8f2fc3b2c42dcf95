"""trainyard's neural-network core: the job spec, the numpy engine, datasets, model files and backends."""

__version__ = "0.1.0"
