#!/usr/bin/python3
"""A WebSocket echo server, and a client that checks the echo, for the L7
end-to-end tests (Debian's python3-websockets on both ends: a real
handshake, masked frames, pings).

  ws_echo.py serve PORT            echo every message back
  ws_echo.py talk URL COUNT        send COUNT messages, each must come back;
                                   prints "echoed COUNT", or "refused STATUS"
                                   (exit 3) when the handshake is answered so
"""
import asyncio
import sys

import websockets


async def echo(ws, path=None):
    async for message in ws:
        await ws.send(message)


async def serve(port):
    async with websockets.serve(echo, "0.0.0.0", port):
        await asyncio.Future()


async def talk(url, count):
    try:
        async with websockets.connect(url, open_timeout=10) as ws:
            for i in range(count):
                message = f"message {i} " + "x" * (i * 997)
                await ws.send(message)
                got = await asyncio.wait_for(ws.recv(), 10)
                if got != message:
                    print(f"message {i} came back different: {got[:80]!r}")
                    return 1
            await ws.ping()
    except websockets.exceptions.InvalidStatusCode as e:
        print(f"refused {e.status_code}")
        return 3
    print(f"echoed {count}")
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve(int(sys.argv[2])))
    else:
        sys.exit(asyncio.run(talk(sys.argv[2], int(sys.argv[3]))))
