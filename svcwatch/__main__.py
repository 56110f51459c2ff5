"""`python -m svcwatch` runs the same CLI as the `svcwatch` script."""

from __future__ import annotations

from svcwatch.cli import main

if __name__ == "__main__":
    main()
