"""Tracking: the supervisors' view (督办) — every case's timeline, durable deadline timers and
the overdue board."""
