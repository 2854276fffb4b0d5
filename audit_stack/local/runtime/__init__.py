"""Lambda workers: each function runs in isolated Python processes, one invocation at a time."""
