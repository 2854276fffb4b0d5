"""The emulator's one HTTP layer: which operation a request is, faults, metering, local APIs,
and moto behind them."""
