"""A response's writes leave in one syscall, in order, and nothing held is lost on close."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from service.front.server.write_coalescing import CoalescedWrites


def over_a_socket(scenario: Callable[[CoalescedWrites, list[bytes], socket.socket], Awaitable[None]]) -> None:
    """Run `scenario` with a coalescing wrapper around a real transport on one end of a socket pair,
    the writes that reach that transport, and the other end of the pair."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        theirs.settimeout(5)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        writes: list[bytes] = []
        write = transport.write

        def record(
            data: bytes | bytearray | memoryview,
        ) -> None:  # what the socket's own transport is asked to send
            writes.append(bytes(data))
            write(data)

        transport.write = record  # type: ignore[method-assign]
        try:
            await scenario(CoalescedWrites(transport, loop), writes, theirs)
        finally:
            transport.close()
            theirs.close()

    asyncio.run(main())


def received(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_a_head_and_body_written_together_leave_in_one_write() -> None:
    async def scenario(writes: CoalescedWrites, sent: list[bytes], peer: socket.socket) -> None:
        writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        writes.write(bytearray(b"{}"))
        assert sent == []  # held until the response completes
        writes.flush()
        assert sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        assert received(peer, len(sent[0])) == sent[0]

    over_a_socket(scenario)


def test_a_write_nobody_flushes_leaves_by_the_next_loop_turn() -> None:
    async def scenario(writes: CoalescedWrites, sent: list[bytes], peer: socket.socket) -> None:
        writes.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the request's body is awaited next
        await asyncio.sleep(0)  # one loop turn: the behaviour under test, not a wait for time
        assert sent == [b"HTTP/1.1 100 Continue\r\n\r\n"]
        assert received(peer, len(sent[0])) == sent[0]

    over_a_socket(scenario)


def test_close_sends_what_is_held_first() -> None:
    async def scenario(writes: CoalescedWrites, sent: list[bytes], peer: socket.socket) -> None:
        writes.write(b"HTTP/1.1 408 Request Timeout\r\n")
        writes.write(b"connection: close\r\n\r\n")
        writes.close()
        # Read to the end of the stream off the loop, so the loop can finish closing the socket.
        everything = await asyncio.to_thread(received, peer, 1 << 16)
        assert everything == b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n"
        assert writes.is_closing()

    over_a_socket(scenario)
