"""`make demo`: Lifeguard doing its main job on the real local environment, in one command.

A product feature, not a test helper: it shows a user what Lifeguard does. It runs on the
environment of tests/devenv (PostgreSQL with River's schema, the control plane, node agents)
and plays its story there; tests/e2e/test_demo.py plays the same code on the test session's
cluster. Run it as `PYTHONPATH=tests:. python -m demo` (`make demo`).
"""
