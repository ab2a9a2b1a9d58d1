"""Dispatch: routes whistled cases to the responsible departments (派单) and keeps their
assignments — signed for (部门报到) and resolved (办结)."""
