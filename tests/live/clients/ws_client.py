#!/usr/bin/env python3
"""A real WebSocket client for the live tests (Python `websockets`, pinned in .ci/run).

Prints `OPEN` once the handshake is complete, then every text frame on its own line, then
`CLOSED <code> <reason>` when the server closes; `REFUSED <status>` if the server refuses the
handshake. Pings are answered by the library. Exits after
--seconds at the latest, so a forgotten client never lingers.
"""

import argparse
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


async def follow(url: str, origin: str | None) -> None:
    try:
        opened = connect(url, max_size=None, open_timeout=20, origin=origin)
        socket = await opened
    except InvalidStatus as refusal:
        print(f"REFUSED {refusal.response.status_code}", flush=True)
        return
    async with socket:
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
    parser.add_argument("--origin", help="send this Origin header with the handshake")
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(follow(args.url, args.origin), args.seconds))
    except asyncio.TimeoutError:
        return 0
    except Exception as error:  # the test reads stderr when it fails
        print(f"ws_client: {error!r}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
