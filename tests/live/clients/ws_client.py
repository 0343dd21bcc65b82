#!/usr/bin/env python3
"""A real WebSocket client for the live tests (Python `websockets`, pinned in .ci/run).

Prints `OPEN` once the handshake is complete, then every text frame on its own line, then
`CLOSED <code> <reason>` when the server closes. Pings are answered by the library. Exits after
--seconds at the latest, so a forgotten client never lingers.
"""

import argparse
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def follow(url: str) -> None:
    async with connect(url, max_size=None, open_timeout=20) as socket:
        print("OPEN", flush=True)
        try:
            async for frame in socket:
                text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                print(text, flush=True)
        except ConnectionClosed:
            pass
        print(f"CLOSED {socket.close_code} {socket.close_reason or ''}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(follow(args.url), args.seconds))
    except asyncio.TimeoutError:
        return 0
    except Exception as error:  # the test reads stderr when it fails
        print(f"ws_client: {error!r}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
