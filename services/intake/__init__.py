"""Intake: the front door for grid workers (网格员) and communities (社区)."""
