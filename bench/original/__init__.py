"""The original Serverless solution's configuration as a CDK stack: the benchmark's baseline."""
