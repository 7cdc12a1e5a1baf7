"""The process node agent: a small test-side kubelet that runs pods as local processes.

The agent itself (agent.py, run as `python -m devenv.nodeagent`) registers a Node (node.py),
runs each pod's containers as processes (pod.py, spec.py, proc.py) and answers its handle's
requests (control.py); kube.py is its small apiserver client. Tests, the bench and
`devenv up` start it and steer it through the handle exported here.
"""

from devenv.nodeagent.handle import (
    NodeAgentError,
    NodeAgentHandle,
    start_node_agent,
    stop_node_agent,
)

__all__ = ["NodeAgentError", "NodeAgentHandle", "start_node_agent", "stop_node_agent"]
