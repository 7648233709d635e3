"""What tests share: running the CLI, checking a sweep's records, sweep files, the browser."""
