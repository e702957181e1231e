#!/usr/bin/python3
"""Does punching a hole in a file change bytes that a socket is still sending from it?

The tile cache's body arena (src/cache/arena.rs) sends bodies with sendfile and, when a
body is dropped, punches its run out of the file (fallocate PUNCH_HOLE) and writes the
next body there. That is safe only if the punch detaches the pages a socket still holds
without touching them. This sends a body into a socket that has not read it yet, punches
part of its pages, writes other bytes there, then reads the socket and counts the pages
that arrived changed: for a file on a disk filesystem (O_TMPFILE in TMPDIR_DISK, default
/tmp) and a memfd, each filled with pwrite and through a shared mapping.

    benches/punch_in_flight.py     # docs/benchmarks.md, "The body file on disk, measured and withdrawn"
"""

import ctypes
import mmap
import os
import socket

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
PAGE = 4096
FILE_BYTES = 4 << 20


def open_file(kind):
    if kind == "disk":
        return os.open(os.environ.get("TMPDIR_DISK", "/tmp"), os.O_TMPFILE | os.O_RDWR, 0o600)
    return os.memfd_create("tiles")


def trial(kind, how, size, punch_at, punch_len):
    fd = open_file(kind)
    os.ftruncate(fd, FILE_BYTES)
    body = os.urandom(size)
    if how == "pwrite":
        os.pwrite(fd, body, 0)
    else:
        with mmap.mmap(fd, FILE_BYTES) as mapping:
            mapping[:size] = body
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    sender = socket.socket()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sender.connect(listener.getsockname())
    receiver, _ = listener.accept()
    sent = 0
    while sent < size:
        sent += os.sendfile(sender.fileno(), fd, sent, size - sent)
    if libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, punch_at, punch_len) != 0:
        raise OSError(ctypes.get_errno(), "fallocate")
    # The run's next body.
    os.pwrite(fd, b"\xaa" * punch_len, punch_at)
    received = b""
    while len(received) < size:
        received += receiver.recv(size - len(received))
    changed = sum(received[i : i + PAGE] != body[i : i + PAGE] for i in range(0, size, PAGE))
    for s in (sender, receiver, listener):
        s.close()
    os.close(fd)
    print(f"| {kind} | {how} | {size >> 10} KiB | pages {punch_at // PAGE}-{(punch_at + punch_len) // PAGE - 1} | {changed} of {size // PAGE} |")


print(f"kernel {os.uname().release}")
print("| file | written with | body | punched | pages that arrived changed |")
print("| --- | --- | --- | --- | --- |")
for kind in ("disk", "memfd"):
    for how in ("pwrite", "mapping"):
        trial(kind, how, 64 << 10, 16 << 10, 16 << 10)
        trial(kind, how, 1 << 20, 256 << 10, 64 << 10)
