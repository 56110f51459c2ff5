"""The watcher: one kopf-style event stream for the Service and its EndpointSlices.

Two sources deliver the same `WatchEvent`s (events.py): the lab's object store followed through
inotify (lab_source.py) and a cluster through embedded kopf (kopf_source.py). sync.py times how
long each slice change took to reach the kernel and the wire. Nothing here imports the UI.
"""
