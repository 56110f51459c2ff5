"""Pure kube-proxy: Service + EndpointSlices -> rules, and rules <-> iptables/nft text."""
