"""The socat pod's process: `socat TCP-LISTEN:12345,fork,reuseaddr EXEC:/bin/cat`, in Python.

It echoes every byte back on every connection, many at once, from one thread with `selectors`
(socat forks per connection; the packets on the wire are the same). The lab starts it inside the
pod's namespace as a detached process; `--lab` and `--pod` are only there so `lab down` can
recognise it even when the namespace or the state that named it is gone. It prints `ready` once
listening, so the lab knows the pod is up without polling.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys


def serve(listener: socket.socket) -> None:
    """Accept and echo until killed."""
    sel = selectors.DefaultSelector()
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ)
    pending: dict[socket.socket, bytes] = {}
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock is listener:
                _accept(listener, sel, pending)
            else:
                _echo(sock, sel, pending)


def _accept(
    listener: socket.socket, sel: selectors.BaseSelector, pending: dict[socket.socket, bytes]
) -> None:
    try:
        conn, _ = listener.accept()
    except (BlockingIOError, ConnectionAbortedError):
        return
    conn.setblocking(False)
    pending[conn] = b""
    sel.register(conn, selectors.EVENT_READ)


def _echo(
    sock: socket.socket, sel: selectors.BaseSelector, pending: dict[socket.socket, bytes]
) -> None:
    try:
        data = pending[sock] or sock.recv(65536)
        if not data:
            raise ConnectionResetError
        sent = sock.send(data)
        pending[sock] = data[sent:]
        # A slow reader: wait until writable instead of buffering without bound.
        sel.modify(sock, selectors.EVENT_WRITE if pending[sock] else selectors.EVENT_READ)
    except BlockingIOError:
        return
    except OSError:
        sel.unregister(sock)
        pending.pop(sock, None)
        sock.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="svcwatch.lab.echo", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--lab", default="", help="the lab this pod belongs to (for `lab down`)")
    parser.add_argument("--pod", default="", help="the pod's name (for `lab down`)")
    args = parser.parse_args(argv)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # socat's `reuseaddr`
    listener.bind((args.host, args.port))
    listener.listen(128)
    print("ready", flush=True)
    # Nobody reads stdout after `ready`: point it at /dev/null so a later write cannot SIGPIPE us.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    try:
        serve(listener)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
