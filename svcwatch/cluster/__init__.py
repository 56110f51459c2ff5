"""Cluster mode: kubeconfig, API wrappers, the demo objects, the owned slice and the node agent."""
