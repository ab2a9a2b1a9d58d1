"""Notify: tells departments about dispatches (派单) and supervisors about late cases (超时督办)."""
