"""Tooling for working on Driftline from a checkout (never imported by the server)."""
