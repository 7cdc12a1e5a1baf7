"""`make bench`: Lifeguard's detection, cost and scale figures, measured on the real local
environment (PostgreSQL with River's schema; then the control plane, node agents, Go workers
and the operator), side by side with River's own rescuer.

Run it as `PYTHONPATH=tests:. python -m bench`; sizes come from BENCH_* variables (see
`bench.config`), so the sanity test runs the same code on tiny sizes in seconds.
"""
