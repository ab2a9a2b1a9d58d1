"""Intake's open311 domain folder."""
