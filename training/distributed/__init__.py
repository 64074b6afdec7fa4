"""The Ray Train side: the loop each worker runs, the typed run configuration, the report from Ray's Result,
the runtime environment every job ships, checkpoint storage and token auth for a local Ray."""
