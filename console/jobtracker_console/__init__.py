"""The jobtracker web console: jobs, attempts, logs and submissions in a browser (server and
static pages; no network at run time, no Node toolchain, not part of the Lambda layer)."""
