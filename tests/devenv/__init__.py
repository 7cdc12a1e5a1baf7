"""The real local environment for Lifeguard's tests and demos.

PostgreSQL with River's schema, a Kubernetes control plane built from Go modules and process
node agents, all started by this package on loopback with free ports and stopped by PID.
`python -m devenv up|down --state-dir DIR` and the pytest fixtures use the same code.
"""
