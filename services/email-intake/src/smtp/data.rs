//! Reading one message after DATA: lines up to `<CRLF>.<CRLF>`, leading dots
//! unstuffed (RFC 5321 4.5.2), at most a size limit kept.
//!
//! Only `<CRLF>.<CRLF>` ends a message: a `.` line after a bare LF is data.
//! Accepting `<LF>.<LF>` as an end would let a sender smuggle a second message
//! past a relay that reads it differently ("SMTP smuggling", CVE-2023-51764).

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Bytes read at most per step (a line longer than this is read in pieces).
pub const DATA_CHUNK: usize = 16 * 1024;

/// What was read after DATA.
#[derive(Debug, PartialEq, Eq)]
pub enum DataOutcome {
    /// The whole message, unstuffed.
    Message(Vec<u8>),
    /// The message was longer than the limit; it was read to its end and dropped.
    TooBig,
}

/// Reads a message from `io` up to its end marker. Each read waits at most
/// `timeout`; a closed connection or a timeout is an error (the message is
/// not accepted, the sender retries).
pub async fn read_data<R: AsyncBufRead + Unpin>(
    io: &mut R,
    max_bytes: usize,
    timeout: Duration,
) -> std::io::Result<DataOutcome> {
    let mut message = Vec::new();
    let mut too_big = false;
    // The CRLF ending the DATA command counts as the line end before the first line.
    let mut after_crlf = true;
    let mut at_line_start = true;
    let mut chunk = Vec::with_capacity(DATA_CHUNK);
    loop {
        chunk.clear();
        let read = tokio::time::timeout(
            timeout,
            (&mut *io)
                .take(DATA_CHUNK as u64)
                .read_until(b'\n', &mut chunk),
        )
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "DATA timed out"))??;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed during DATA",
            ));
        }
        let mut piece = chunk.as_slice();
        if at_line_start {
            if after_crlf && piece == b".\r\n" {
                break;
            }
            if piece.first() == Some(&b'.') {
                piece = &piece[1..];
            }
        }
        at_line_start = chunk.last() == Some(&b'\n');
        after_crlf = chunk.ends_with(b"\r\n");
        if !too_big {
            if message.len() + piece.len() > max_bytes {
                too_big = true;
                message = Vec::new();
            } else {
                message.extend_from_slice(piece);
            }
        }
    }
    Ok(if too_big {
        DataOutcome::TooBig
    } else {
        DataOutcome::Message(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read(input: &[u8], max: usize) -> std::io::Result<DataOutcome> {
        let mut io = tokio::io::BufReader::new(input);
        read_data(&mut io, max, Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn reads_to_the_end_marker_and_unstuffs_dots() {
        let out = read(b"Subject: x\r\n\r\n..hidden\r\n.\r\nQUIT\r\n", 1000)
            .await
            .unwrap();
        assert_eq!(
            out,
            DataOutcome::Message(b"Subject: x\r\n\r\n.hidden\r\n".to_vec())
        );
    }

    #[tokio::test]
    async fn bare_lf_dot_does_not_end_the_message() {
        let out = read(b"a\n.\nb\r\n.\r\n", 1000).await.unwrap();
        assert_eq!(out, DataOutcome::Message(b"a\n\nb\r\n".to_vec()));
    }

    #[tokio::test]
    async fn an_empty_message_ends_at_the_first_dot_line() {
        assert_eq!(
            read(b".\r\n", 1000).await.unwrap(),
            DataOutcome::Message(Vec::new())
        );
    }

    #[tokio::test]
    async fn long_lines_are_kept_whole() {
        let mut input = vec![b'x'; DATA_CHUNK * 3 + 7];
        input.extend_from_slice(b"\r\n.\r\n");
        let DataOutcome::Message(message) = read(&input, usize::MAX).await.unwrap() else {
            panic!("too big")
        };
        assert_eq!(message.len(), DATA_CHUNK * 3 + 9);
    }

    #[tokio::test]
    async fn a_message_over_the_limit_is_read_to_its_end_and_refused() {
        let mut input = b"a\r\n".repeat(1000);
        input.extend_from_slice(b".\r\nNEXT");
        let mut io = tokio::io::BufReader::new(input.as_slice());
        let out = read_data(&mut io, 100, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out, DataOutcome::TooBig);
        let mut rest = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut io, &mut rest)
            .await
            .unwrap();
        assert_eq!(rest, "NEXT", "the next command is read as a command");
    }

    #[tokio::test]
    async fn a_closed_connection_is_an_error_not_a_message() {
        assert!(read(b"Subject: half\r\n", 1000).await.is_err());
    }
}
