"""Nagle's algorithm off on the SSH socket: a real TCP socket over 127.0.0.1 behind the attributes pyinfra's
SSH connector has (connector.client.get_transport().sock); anything else is left alone."""

from __future__ import annotations

import socket
from types import SimpleNamespace

from llmrack.ssh_latency import no_delay


def _host(sock):
    transport = SimpleNamespace(sock=sock)
    return SimpleNamespace(connector=SimpleNamespace(client=SimpleNamespace(get_transport=lambda: transport)))


def test_the_tcp_socket_of_the_connection_gets_tcp_nodelay() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, \
            socket.create_connection(server.getsockname()) as sock:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert no_delay(_host(sock)) is True
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_other_connections_are_left_alone() -> None:
    a, b = socket.socketpair()  # a Unix socket: no TCP option to set
    with a, b:
        assert no_delay(_host(a)) is False
    assert no_delay(_host(None)) is False  # a proxied channel, a transport not yet open
    assert no_delay(SimpleNamespace(connector=SimpleNamespace(client=None))) is False  # not connected
    assert no_delay(SimpleNamespace(connector=object())) is False  # the local or docker connector
