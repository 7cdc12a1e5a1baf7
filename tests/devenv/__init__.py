"""The real local environment for Lifeguard's tests and demos.

PostgreSQL with River's schema, a Kubernetes control plane built from Go modules and process
node agents, all started by this package on loopback with free ports and stopped by PID.
`python -m devenv up|down --state-dir DIR` and the pytest fixtures use the same code.

Which node runs what:

- Process node agents (`nodeagent/`, nodes `node-1`, `node-2`, ...): a kubelet stand-in
  that runs each pod's command as a host process in its own UTS namespace and memory cgroup.
  They serve where a real kubelet cannot go or would be too heavy: node failure and loss
  (a node agent can stop its Lease and status and kill its processes on request), the bench's
  scale figures (10k pods), and most operator scenarios, which need many quick pods.
- The real node (`realnode*.py`, node `realnode`, tainted `lifeguard.dev/real-node`):
  kubelet, containerd, runc and the CNI bridge plugin built from their Go modules, running
  images built with buildah (tools/images.sh): the operator installed by `helm install` from
  its own image under the restricted Pod Security Standard, and worker pods from the worker
  image. tests/e2e/test_real_node.py, the demo's operator and OOM kill (demo/, `make demo`)
  and the bench's `realnode` section run on it (`python -m devenv up --real-node` starts it
  for people): every container status there (OOMKilled, exit codes, restarts, eviction,
  graceful termination) comes from the real kubelet.
"""
