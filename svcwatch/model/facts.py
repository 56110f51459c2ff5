"""What a backend knows about an endpoint beyond the slice: is there such a pod, does it listen?

The lab answers from its own namespaces, a cluster from its pods, a replay from the recording; the
dashboard's slice pane shows it next to each endpoint, because a slice can name an IP no pod has.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EndpointFacts:
    """What the backend knows about one endpoint beyond the slice: is it real, does it listen?"""

    address: str
    port: int | None
    pod: str | None  # the pod that has this IP, if any
    listening: bool | None  # is anything listening on that port in that pod (None: unknown)
    node: str | None = None
