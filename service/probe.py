"""`python -m service.probe`: exit 0 when the local service answers ready (the image's HEALTHCHECK).

Reads the same settings as the service, so a changed TEXTCLF_PORT moves the probe with it, and
needs nothing beyond the standard library (no curl in the slim image).
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from service.config import Settings, load_settings

# A service bound to every interface is probed on loopback: the probe runs in its network namespace.
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def ready_url(settings: Settings, path: str = "/health/ready") -> str:
    """The URL of the service's readiness route as seen from inside its own host."""
    host = WILDCARDS.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}{path}"


def main(argv: Sequence[str] | None = None) -> int:
    """Check that the service on this host is ready; exit 0 if so, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m service.probe", description=main.__doc__)
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds")
    parser.add_argument("--path", default="/health/ready", help="route to check (e.g. /health/live)")
    args = parser.parse_args(argv)
    settings = load_settings()
    url = ready_url(settings, args.path)
    request = urllib.request.Request(url)
    tokens = settings.bearer_tokens()
    if tokens and not settings.open_health:
        # Health routes need a token too: use the service's own (read from the same settings).
        request.add_header("Authorization", f"Bearer {tokens[0]}")
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            status = response.status
    except urllib.error.HTTPError as err:
        status = err.code
    except OSError as err:  # refused, timed out, unreachable
        print(f"{url}: {err}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"{url}: HTTP {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
