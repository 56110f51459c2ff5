"""The Textual dashboard: composes the four panes and routes session events to them.

Nothing here talks to the kernel or a cluster directly; every blocking call goes through a
`Session` from a thread worker, and backends reach the UI only through `bridge.UiSink`.
"""
