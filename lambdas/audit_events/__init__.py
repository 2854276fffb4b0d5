"""Lambda code of the audit pipeline: the audit event schema, its publisher and its recorder."""
