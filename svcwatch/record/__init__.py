"""Recordings: write what the dashboard shows to a file, read it back, replay it, export pcapng.

This backend imports no other backend and no UI; sessions (svcwatch/session/) wire it in.
"""

from __future__ import annotations

from pathlib import Path

# The bundled recording of the four scenarios, made on the real lab by `make_demo.py`.
DEMO_RECORDING = Path(__file__).resolve().parent / "demo.svcrec.gz"
