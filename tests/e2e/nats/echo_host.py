"""A stand-in fleet host for network tests: plain NATS, not hostmcp's signed protocol.

It logs in with a host nkey, takes its name from the hostname (as `hostmcp serve --fleet` does
by default), answers every request on `hostmcp.host.<name>.call` with `<name> <pid>`, and
publishes a presence beat on `hostmcp.presence.<name>` every --beat seconds. It reconnects by
itself (no attempt limit), so a cut link that is restored brings it back without a restart.

    python3 echo_host.py --nats tls://10.64.1.1:4222 --nkey web1.nk --ca ca.pem [--beat 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import ssl

import nats


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nats", required=True)
    parser.add_argument("--nkey", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--beat", type=float, default=0.5)
    args = parser.parse_args()
    name = socket.gethostname().split(".")[0]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def on_error(e):
        print(f"nats: {e}", flush=True)

    nc = await nats.connect(args.nats, nkeys_seed=args.nkey, tls=ssl.create_default_context(cafile=args.ca),
                            name=name, error_cb=on_error, connect_timeout=5, max_reconnect_attempts=-1,
                            reconnect_time_wait=0.5, ping_interval=1, max_outstanding_pings=2)

    async def answer(msg):
        await nc.publish(msg.reply, f"{name} {os.getpid()}".encode())

    await nc.subscribe(f"hostmcp.host.{name}.call", cb=answer)
    print(f"ready {name}", flush=True)
    beat = 0
    while not stop.is_set():
        beat += 1
        if nc.is_connected:
            await nc.publish(f"hostmcp.presence.{name}", json.dumps({"host": name, "beat": beat}).encode())
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.beat)
        except asyncio.TimeoutError:
            pass
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
