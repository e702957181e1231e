#!/usr/bin/python3
"""Does sending a tile with sendfile(2) from a memory file cost the sender less CPU than
send(2) from user memory, over loopback TCP?

A cache hit's largest cost is the kernel's copy of the body into the socket
(docs/benchmarks.md, "Cache hits against nginx"); nginx avoids it with sendfile from the
page cache. This measures whether keeping cached bodies in a memfd and sending them with
sendfile would save that copy here: the same bodies (distinct, so that they are not all
in the CPU's caches, as in the server's tile cache), sent by one thread to a reader
thread, alternating the ways; the figure is the sending thread's CPU time per body. A
third way, `sendfile` from a regular file in the page cache, is what nginx does; the
fourth and fifth fill such a file otherwise (through a shared mapping; `pwrite` a page
at a time), which changes the folios the page cache holds the bodies in.

    cd .data && ../benches/sendfile_copy.py [BODY_BYTES] [BODIES] [SENDS_PER_ROUND] [ROUNDS]
"""

import mmap
import os
import resource
import socket
import sys
import tempfile
import threading
import time

size = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
bodies = int(sys.argv[2]) if len(sys.argv) > 2 else 1_800
sends = int(sys.argv[3]) if len(sys.argv) > 3 else 60_000
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
# Bodies in the memory file start on page boundaries, one slot each.
slot = (size + 4095) // 4096 * 4096

data = [os.urandom(size) for _ in range(bodies)]
memfd = os.memfd_create("tiles")
for i, body in enumerate(data):
    os.pwrite(memfd, body, i * slot)
# The same layout in a regular file, in the current folder or TMPDIR_DISK (a disk file
# system: /tmp may be tmpfs, which is a memory file again), read once so that its pages
# are cached.
def disk_file():
    return tempfile.TemporaryFile(dir=os.environ.get("TMPDIR_DISK", "."))


disk = disk_file()
for i, body in enumerate(data):
    os.pwrite(disk.fileno(), body, i * slot)
os.fsync(disk.fileno())
os.pread(disk.fileno(), bodies * slot, 0)
# The same again, written through a shared mapping instead of pwrite (the page cache
# then holds the pages the faults made; pwrite on a filesystem with large folios makes
# larger ones).
mapped = disk_file()
os.ftruncate(mapped.fileno(), bodies * slot)
mapping = mmap.mmap(mapped.fileno(), bodies * slot)
for i, body in enumerate(data):
    mapping[i * slot : i * slot + size] = body
mapping.flush()
os.fsync(mapped.fileno())
# And with pwrite, one page per call (the page cache then holds single pages, as after
# the mapping's faults: the write path sizes its folios by the write).
paged = disk_file()
for i, body in enumerate(data):
    for at in range(0, size, 4096):
        os.pwrite(paged.fileno(), body[at : at + 4096], i * slot + at)
os.fsync(paged.fileno())

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)


def drain():
    conn, _ = listener.accept()
    while conn.recv(1 << 20):
        pass


reader = threading.Thread(target=drain)
reader.start()
sock = socket.create_connection(("127.0.0.1", listener.getsockname()[1]))


def thread_cpu():
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def send_all(i):
    sock.sendall(data[i])


def sendfile_from(fd):
    def send(i):
        offset = 0
        while offset < size:
            offset += os.sendfile(sock.fileno(), fd, i * slot + offset, size - offset)

    return send


print(f"{bodies} bodies of {size} bytes, {sends} sends per round, loopback TCP, kernel {os.uname().release}")
print("| round | way | sender CPU µs/body | wall µs/body |")
print("| --- | --- | ---: | ---: |")
for r in range(1, rounds + 1):
    ways = (
        ("send", send_all),
        ("sendfile (memfd)", sendfile_from(memfd)),
        ("sendfile (file in the page cache)", sendfile_from(disk.fileno())),
        ("sendfile (file in the page cache, written through a mapping)", sendfile_from(mapped.fileno())),
        ("sendfile (file in the page cache, pwrite page by page)", sendfile_from(paged.fileno())),
    )
    for name, way in ways:
        cpu0, wall0 = thread_cpu(), time.perf_counter()
        for n in range(sends):
            way((n * 7919) % bodies)
        cpu = (thread_cpu() - cpu0) / sends * 1e6
        wall = (time.perf_counter() - wall0) / sends * 1e6
        print(f"| {r} | {name} | {cpu:.1f} | {wall:.1f} |")
sock.close()
reader.join()
