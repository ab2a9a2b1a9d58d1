"""``make bench-e2e``: the whole embedded system under load, against this machine's floor.

Starts its own stack (``stack.stack.Stack``) on free ports in a temporary folder, measures
the floor of the machine on the same broker and PostgreSQL server (``floor``), drives the real
HTTP API open-loop at fixed rates and then closed-loop (``load``), reads each case's
timestamps from the four services' databases (``segments``), samples CPU and RSS of every
process (``resources``), and prints the tables and writes them as JSON (``report``).
"""
