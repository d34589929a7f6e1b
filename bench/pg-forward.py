#!/usr/bin/env python3
"""TCP forwarder for bench/cluster-hosts.sh: LISTEN_HOST:PORT -> 127.0.0.1:PORT (PostgreSQL listens on
localhost only). The accepted side gets short TCP keepalives (2 s idle, 1 s interval, 3 probes), as
`tcp_keepalives_*` would give PostgreSQL itself: when a host is cut off, its sessions end within ~5 s
and the advisory-lock leases it held are free (ADR 19)."""
import asyncio, socket, sys

listen_host, port = sys.argv[1], int(sys.argv[2])

async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass

async def handle(client_reader, client_writer):
    s = client_writer.get_extra_info("socket")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 2)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    # unacknowledged data (a write into a cut link) also ends the session within 5 s
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 5000)
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

async def main():
    server = await asyncio.start_server(handle, listen_host, port)
    async with server:
        await server.serve_forever()

asyncio.run(main())
