"""Test instruments at the endpoint: fault injection, and request metering (counts, errors,
billed units)."""
