"""Passwords, tokens and login rate limiting (no HTTP here)."""
