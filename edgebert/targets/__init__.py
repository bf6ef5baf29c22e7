"""Checking artifacts for targets other than this machine (arm64 under emulation)."""
