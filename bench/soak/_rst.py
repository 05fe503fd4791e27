"""Connections that end in a TCP reset, for the soak suite.

    python3 _rst.py MODE HOST PORT COUNT [SECONDS]

Each socket is closed with SO_LINGER {on, 0}, which sends RST instead of
FIN. MODE:

- mid-request: half a request head, or a whole head and part of its
  body, then the reset;
- mid-response: a request for 1 MiB, one read of its answer, then the
  reset;
- storm: connections reset before the server accepts them, in waves of
  50 (all connected, then all reset), 20 ms apart.

No new connection is started after SECONDS (default 30), so that a
server that stops accepting cannot hold the script for long.

Prints one JSON line: {"done": connections, "sent": bytes, "errors": n}.
"""

import json
import socket
import struct
import sys
import time

CONNECT_TIMEOUT = 2

LINGER_RST = struct.pack("ii", 1, 0)


def reset(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    except OSError:
        pass
    sock.close()


def mid_request(host, port, count, until):
    done = sent = errors = 0
    for i in range(count):
        if time.monotonic() > until:
            break
        if i % 2 == 0:
            data = b"GET / HTTP/1.1\r\nHost: so"
        else:
            data = (b"POST /upload HTTP/1.1\r\nHost: soak\r\n"
                    b"Content-Length: 100000\r\n\r\n" + b"x" * 5000)
        try:
            sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
            sock.sendall(data)
            sent += len(data)
            time.sleep(0.001)  # let the server see the bytes first
            reset(sock)
            done += 1
        except OSError:
            errors += 1
    return done, sent, errors


def mid_response(host, port, count, until):
    done = sent = errors = 0
    data = b"GET /big?bytes=1048576 HTTP/1.1\r\nHost: soak\r\n\r\n"
    for _ in range(count):
        if time.monotonic() > until:
            break
        try:
            sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
            sock.sendall(data)
            sent += len(data)
            sock.recv(16384)
            reset(sock)
            done += 1
        except OSError:
            errors += 1
    return done, sent, errors


def storm(host, port, count, until):
    done = errors = 0
    while done + errors < count and time.monotonic() < until:
        wave = []
        for _ in range(min(50, count - done - errors)):
            if time.monotonic() > until:
                break
            try:
                wave.append(socket.create_connection((host, port), timeout=CONNECT_TIMEOUT))
            except OSError:
                errors += 1
        for sock in wave:
            reset(sock)
            done += 1
        time.sleep(0.02)
    return done, 0, errors


def main():
    mode, host, port, count = sys.argv[1:5]
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 30.0
    run = {"mid-request": mid_request, "mid-response": mid_response,
           "storm": storm}[mode]
    until = time.monotonic() + seconds
    done, sent, errors = run(host, int(port), int(count), until)
    print(json.dumps({"done": done, "sent": sent, "errors": errors}))


if __name__ == "__main__":
    main()
