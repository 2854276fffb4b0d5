"""`make bench`: the project's configuration next to the original's, on the embedded emulator."""
