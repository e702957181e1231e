//! Writes of a connection that send cached bodies with `sendfile(2)`.
//!
//! hyper writes a response as one vectored write: the head it built, then the body's
//! bytes as they are. When the body is a cached tile kept in the cache's memory file
//! ([`crate::cache::arena`]), [`poll_write`] sends the head with `MSG_MORE` and the body
//! with `sendfile` from the file: the socket takes references to the file's pages
//! instead of a copy of the bytes, as it does for nginx's files. Any other write goes out
//! as a plain vectored write.
//!
//! A write may be partial (a full socket buffer): it reports the bytes taken, and hyper
//! calls again with the rest, a slice that still lies in the file at its new offset.

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;

use crate::cache::arena::{BodyArena, FileRange};

/// Writes `bufs` (in order, possibly only a first part) to `stream`: the slices before
/// the first one lying in `arena` as a vectored write, that one with `sendfile`. The
/// number of bytes taken, as `poll_write_vectored`.
pub fn poll_write(
    stream: &mut TcpStream,
    arena: &BodyArena,
    cx: &mut Context<'_>,
    bufs: &[IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let Some((index, range)) = bufs.iter().enumerate().find_map(|(i, b)| {
        (!b.is_empty())
            .then(|| arena.locate(b))
            .flatten()
            .map(|r| (i, r))
    }) else {
        return Pin::new(stream).poll_write_vectored(cx, bufs);
    };
    let (before, body) = (&bufs[..index], &bufs[index]);
    loop {
        ready!(stream.poll_write_ready(cx))?;
        let fd = stream.as_raw_fd();
        match stream.try_io(Interest::WRITABLE, || {
            write_once(fd, before, body.len(), range)
        }) {
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// One attempt: `before` with `MSG_MORE`, then `len` bytes of the file from `range`.
/// `WouldBlock` only when nothing was taken.
fn write_once(
    socket: i32,
    before: &[IoSlice<'_>],
    len: usize,
    range: FileRange,
) -> io::Result<usize> {
    let head_len: usize = before.iter().map(|b| b.len()).sum();
    let mut written = 0;
    if head_len > 0 {
        written = send_more(socket, before)?;
        if written < head_len {
            return Ok(written);
        }
    }
    let mut offset = libc::off_t::try_from(range.offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))?;
    // SAFETY: valid descriptors; `offset` is a local the kernel advances.
    let sent = unsafe { libc::sendfile(socket, range.fd, &mut offset, len) };
    match usize::try_from(sent) {
        Ok(n) => Ok(written + n),
        Err(_) => {
            let e = io::Error::last_os_error();
            if written > 0 && e.kind() == io::ErrorKind::WouldBlock {
                Ok(written)
            } else {
                Err(e)
            }
        }
    }
}

/// `sendmsg` of `bufs` with `MSG_MORE` (the body follows at once) and without `SIGPIPE`.
fn send_more(socket: i32, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: `msghdr` is plain data; all-zero is a valid empty header.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is ABI-compatible with `iovec` on Unix.
    message.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    message.msg_iovlen = bufs.len();
    // SAFETY: the header points at `bufs`, alive for the call.
    let sent = unsafe { libc::sendmsg(socket, &message, libc::MSG_MORE | libc::MSG_NOSIGNAL) };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A head and bodies kept in the file, written through a socket whose peer reads
    /// slowly (the writes fill the buffers and come back partial): every byte arrives,
    /// in order.
    #[tokio::test]
    async fn heads_and_file_bodies_arrive_whole_and_in_order() {
        let arena = BodyArena::new(4 << 20).unwrap();
        let bodies: Vec<Bytes> = (0..6u8)
            .map(|k| {
                let bytes: Vec<u8> = (0..(300_000 + usize::from(k) * 7))
                    .map(|i| (i as u8) ^ k)
                    .collect();
                arena.store(&bytes).unwrap()
            })
            .collect();
        // Small socket buffers, so that writes fill them.
        let listening = tokio::net::TcpSocket::new_v4().unwrap();
        listening.set_recv_buffer_size(16 * 1024).unwrap();
        listening.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listening.listen(8).unwrap();
        let address = listener.local_addr().unwrap();
        let mut expected = Vec::new();
        for (k, body) in bodies.iter().enumerate() {
            expected.extend_from_slice(format!("HEAD {k}\r\n").as_bytes());
            expected.extend_from_slice(body);
        }
        let reader = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut received = Vec::new();
            let mut chunk = vec![0; 16 * 1024];
            loop {
                let n = socket.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&chunk[..n]);
                tokio::time::sleep(std::time::Duration::from_micros(200)).await;
            }
            received
        });
        let connecting = tokio::net::TcpSocket::new_v4().unwrap();
        connecting.set_send_buffer_size(16 * 1024).unwrap();
        let mut stream = connecting.connect(address).await.unwrap();
        let mut partial = 0;
        for (k, body) in bodies.iter().enumerate() {
            let head = format!("HEAD {k}\r\n").into_bytes();
            let (mut head_done, mut body_done) = (0, 0);
            while body_done < body.len() {
                let slices = [
                    IoSlice::new(&head[head_done..]),
                    IoSlice::new(&body[body_done..]),
                ];
                let n = std::future::poll_fn(|cx| poll_write(&mut stream, &arena, cx, &slices))
                    .await
                    .unwrap();
                assert!(n > 0);
                if n < slices[0].len() + slices[1].len() {
                    partial += 1;
                }
                let from_head = n.min(head.len() - head_done);
                head_done += from_head;
                body_done += n - from_head;
            }
        }
        // A write with nothing in the file goes out as it is.
        let tail = b"tail";
        let n =
            std::future::poll_fn(|cx| poll_write(&mut stream, &arena, cx, &[IoSlice::new(tail)]))
                .await
                .unwrap();
        assert_eq!(n, tail.len());
        expected.extend_from_slice(tail);
        stream.shutdown().await.unwrap();
        let received = reader.await.unwrap();
        assert!(
            partial > 0,
            "the slow reader should have made some writes partial"
        );
        assert_eq!(received.len(), expected.len());
        assert!(received == expected, "bytes differ");
    }
}
