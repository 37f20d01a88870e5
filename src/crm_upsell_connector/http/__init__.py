"""One place for HTTP: client, rate limits, retries, auth flows and redaction."""
