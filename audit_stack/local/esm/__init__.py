"""SQS event-source mappings: what to fetch (poller), the thread that runs batches (worker), and
the pure translation between SQS messages, Lambda events and batch responses (events)."""
