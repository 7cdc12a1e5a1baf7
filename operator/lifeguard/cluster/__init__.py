"""Kubernetes I/O: pod and node facts from the operator's caches, Events, evictions, Secrets."""
