"""Sessions: one running backend (lab, cluster or replay) behind one interface.

The dashboard and `svcwatch run` talk only to a `Session`; each session composes the backends
(lab, watcher, capture, probe, cluster agent, recording) and emits their events into one sink.
"""
