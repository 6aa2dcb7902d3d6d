"""agent-worker: consumes agent-execute jobs from NATS, gates, routes, bills and publishes results."""
