"""The benchmark's peer configurations, each synthesized as its own CDK app."""
