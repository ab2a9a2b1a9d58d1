"""Whistle's shared library: the event contract and the plumbing every service uses.

Nothing here imports a service. See ../README.md and the handbook's ARCHITECTURE.md.
"""
