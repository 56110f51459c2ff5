"""svcwatch: watch a Kubernetes Service break, live, packet by packet.

Nothing is imported here so that `svcwatch --help` stays fast.
"""

__version__ = "0.1.0"
