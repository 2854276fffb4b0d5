"""Lambda workers: each function runs in isolated Python processes, one invocation at a time:
``worker`` (one process), ``pool`` (a function's warm workers and environment), ``registry``
(every function, by name or ARN, and the log of invocations)."""
