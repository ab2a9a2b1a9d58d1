"""Intake's jurisdiction domain folder."""
