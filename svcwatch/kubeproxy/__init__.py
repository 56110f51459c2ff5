"""Pure kube-proxy (iptables mode): Service + EndpointSlices -> rules, and rules <-> iptables text."""
