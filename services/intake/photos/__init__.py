"""Intake's photos domain folder."""
