//! A test-side HTTP/2 frame writer and reader, for what a well-behaved client (the `h2`
//! crate) will not send: streams past the advertised limit, malformed requests, floods.
//!
//! Header blocks use HPACK's literal representations without Huffman coding or indexing
//! (RFC 7541 §6.2.2), plus indexed static-table entries for `:method: POST` and
//! `:scheme: http`, so no encoder state is needed.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const CANCEL: u32 = 0x8;
pub const REFUSED_STREAM: u32 = 0x7;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

pub const CERTIFY_PATH: &str = "/io.linkerd.proxy.identity.Identity/Certify";

/// One frame: its type, flags, stream and payload.
#[derive(Clone, Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }

    /// The last stream id of a GOAWAY frame.
    pub fn last_stream_id(&self) -> u32 {
        u32::from_be_bytes(self.payload[0..4].try_into().unwrap()) & 0x7fff_ffff
    }

    /// A SETTINGS frame's value for `id`.
    pub fn setting(&self, id: u16) -> Option<u32> {
        self.payload.chunks_exact(6).find_map(|entry| {
            (u16::from_be_bytes([entry[0], entry[1]]) == id)
                .then(|| u32::from_be_bytes([entry[2], entry[3], entry[4], entry[5]]))
        })
    }
}

/// The bytes of one frame.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// Reads one frame; `None` at the end of the connection (or when it was reset).
pub async fn read_frame(r: &mut (impl AsyncRead + Unpin)) -> Option<Frame> {
    let mut head = [0u8; 9];
    r.read_exact(&mut head).await.ok()?;
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    })
}

/// An HPACK string literal, not Huffman-coded (lengths below 127 only).
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(u8::try_from(s.len()).unwrap());
    out.extend_from_slice(s.as_bytes());
}

/// A literal header field without indexing, its name from the static table (index < 15).
fn indexed_name(out: &mut Vec<u8>, index: u8, value: &str) {
    out.push(index);
    string(out, value);
}

/// A literal header field without indexing, with a literal name.
fn literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    string(out, name);
    string(out, value);
}

/// A gRPC request's header block: `POST path`, `content-type: application/grpc`,
/// `te: trailers`.
pub fn request_headers(path: &str) -> Vec<u8> {
    let mut out = vec![0x83, 0x86]; // :method: POST, :scheme: http
    indexed_name(&mut out, 0x04, path); // :path
    indexed_name(&mut out, 0x01, "localhost"); // :authority
    // content-type is static index 31: 4-bit prefix 15, then 16.
    out.extend_from_slice(&[0x0f, 0x10]);
    string(&mut out, "application/grpc");
    literal(&mut out, "te", "trailers");
    out
}

/// A malformed request's header block (RFC 9113 §8.1.1): no `:method`. The server must
/// reset its stream (PROTOCOL_ERROR).
pub fn malformed_headers() -> Vec<u8> {
    let mut out = vec![0x86]; // :scheme: http
    indexed_name(&mut out, 0x04, CERTIFY_PATH);
    out
}

/// A gRPC message's length-prefixed frame (uncompressed).
pub fn grpc_message(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// A raw HTTP/2 connection after the preface: the server's first SETTINGS and the two halves.
pub struct RawConnection {
    pub settings: Frame,
    pub read: OwnedReadHalf,
    pub write: OwnedWriteHalf,
}

/// Connects, sends the preface and empty SETTINGS, reads the server's SETTINGS and
/// acknowledges them.
pub async fn connect(addr: SocketAddr) -> RawConnection {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    write.write_all(&hello).await.unwrap();
    let settings = read_frame(&mut read).await.expect("the server's SETTINGS");
    assert_eq!(settings.kind, SETTINGS);
    write
        .write_all(&frame(SETTINGS, ACK, 0, &[]))
        .await
        .unwrap();
    RawConnection {
        settings,
        read,
        write,
    }
}
