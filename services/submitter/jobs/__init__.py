"""Jobs over HTTP: intake (with idempotency and fair use), status views, cancel, retry."""
