"""Deployment: reads a cloud assembly and creates its stack's resources in the emulator."""
