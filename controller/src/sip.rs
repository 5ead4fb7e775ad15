//! SIP signalling as seen in one UDP payload: the start line, the few headers
//! session detection and hold detection need (Call-ID, CSeq, caller number
//! from P-Asserted-Identity or From, X-Promo-Code), and the SDP body's
//! connection addresses, media ports and directions. Pure parsing: no I/O, no
//! state, and no panic on any input bytes.
//!
//! Header lines (case-insensitive names, RFC 3261 §7.3.3 compact forms,
//! folding, bare-LF line ends) and name-addr values (quoted display names,
//! `sip:`/`sips:`/`tel:` URIs, percent-decoding) are read with `sip-header`.
//! `rsip` 0.4 was evaluated and not used: it rejects bare-LF messages
//! outright, parses `<tel:...>` name-addrs as errors, leaves compact headers
//! untyped and ignores Content-Length. SDP is read with the `sdp` crate
//! (webrtc-rs) and phone numbers with `phonenumber` (libphonenumber data).

use std::borrow::Cow;
use std::io::Cursor;
use std::net::IpAddr;

use phonenumber::{Mode, country};
use sip_header::{SipHeader, SipHeaderAddr};

/// Why a payload could not be read as a SIP message or an SDP body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    /// The payload does not start with a SIP request or status line
    /// (another protocol, a CRLF keep-alive, random bytes).
    #[error("not a SIP message: {0}")]
    NotSip(&'static str),
    /// A SIP start line, but the datagram ends before the message does: no
    /// blank line after the headers, or fewer body bytes than Content-Length.
    #[error("truncated SIP message: {0}")]
    Truncated(String),
    /// A SIP message whose framing headers cannot be read.
    #[error("malformed SIP message: {0}")]
    Malformed(String),
    /// The body is not a valid SDP session description.
    #[error("malformed SDP: {0}")]
    Sdp(String),
}

/// One SIP message.
#[derive(Debug, Clone, PartialEq)]
pub enum SipMessage {
    Request(SipRequest),
    Response(SipResponse),
}

impl SipMessage {
    pub fn call_id(&self) -> Option<&str> {
        match self {
            SipMessage::Request(r) => r.call_id.as_deref(),
            SipMessage::Response(r) => r.call_id.as_deref(),
        }
    }

    pub fn sdp(&self) -> Option<&Sdp> {
        match self {
            SipMessage::Request(r) => r.sdp.as_ref(),
            SipMessage::Response(r) => r.sdp.as_ref(),
        }
    }
}

/// A SIP request.
#[derive(Debug, Clone, PartialEq)]
pub struct SipRequest {
    /// Method in upper case (`INVITE`, `BYE`, ...).
    pub method: String,
    /// The Request-URI as sent.
    pub request_uri: String,
    pub call_id: Option<String>,
    /// The caller's number in E.164 (`+14155550100`), from the first
    /// P-Asserted-Identity address that holds a number, else from From.
    pub caller: Option<String>,
    /// The X-Promo-Code header, trimmed; `None` when absent or empty.
    pub promo_code: Option<String>,
    /// CSeq sequence number and method (method upper-cased).
    pub cseq: Option<(u32, String)>,
    /// The SDP body, when the body is SDP and parses.
    pub sdp: Option<Sdp>,
    /// Why an SDP body was present but unreadable (then `sdp` is `None`).
    /// The message itself is still reported: a broken offer does not hide
    /// who is calling.
    pub sdp_error: Option<SipError>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq)]
pub struct SipResponse {
    pub status: u16,
    /// Reason phrase as sent (may be empty).
    pub reason: String,
    pub call_id: Option<String>,
    pub cseq: Option<(u32, String)>,
    pub sdp: Option<Sdp>,
    pub sdp_error: Option<SipError>,
}

/// Media direction attribute (RFC 4566 §6, RFC 3264 §5.1).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn from_attribute(key: &str) -> Option<Direction> {
        match key {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// How an SDP says a call is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldSaid {
    SendOnly,
    RecvOnly,
    Inactive,
    /// `c=0.0.0.0`, the old way of saying hold.
    NullAddress,
}

impl std::fmt::Display for HoldSaid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HoldSaid::SendOnly => "sendonly",
            HoldSaid::RecvOnly => "recvonly",
            HoldSaid::Inactive => "inactive",
            HoldSaid::NullAddress => "c=0.0.0.0",
        })
    }
}

/// The parts of an SDP session description that QoS and hold detection use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// Session-level `c=` address; `None` when absent or not an IP literal.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    pub media: Vec<Media>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `application`, ...
    pub kind: String,
    /// RTP port; 0 means the stream is disabled or rejected.
    pub port: u16,
    /// Transport as sent (`RTP/AVP`, `RTP/SAVP`, `UDP/BFCP`, ...).
    pub proto: String,
    /// Media-level `c=` address; `None` when absent (the session-level one
    /// applies) or not an IP literal.
    pub connection: Option<IpAddr>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
    /// Port from an `a=rtcp:` attribute (RFC 3605); never 0.
    pub rtcp_port: Option<u16>,
    /// `a=rtcp-mux` (RFC 5761): RTCP shares the RTP port.
    pub rtcp_mux: bool,
    /// The stream's voice or video codec: the first payload format of
    /// the `m=` line that carries media (DTMF events, comfort noise and
    /// redundancy formats are skipped); `None` when there is none.
    pub codec: Option<Codec>,
    /// `a=ptime:` in milliseconds (RFC 4566 §6); never 0.
    pub ptime_ms: Option<u16>,
    /// `b=` lines of the section, else of the session.
    pub bandwidth: Bandwidth,
}

/// A payload format as `a=rtpmap:` (or the static table of RFC 3551 §6)
/// names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    /// Encoding name as sent (`PCMU`, `opus`, ...).
    pub name: String,
    pub clock_hz: u32,
    pub channels: u8,
    /// `maxaveragebitrate` of the format's `a=fmtp:` (Opus, RFC 7587).
    pub max_average_bps: Option<u32>,
}

/// `b=AS:` (kbit/s, RTP and the IP and UDP headers under it) and
/// `b=TIAS:` (bit/s, the media alone: RFC 3890).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bandwidth {
    pub as_kbps: Option<u32>,
    pub tias_bps: Option<u64>,
}

impl Bandwidth {
    fn read(lines: &[sdp::description::common::Bandwidth]) -> Bandwidth {
        let mut b = Bandwidth::default();
        for l in lines.iter().filter(|l| !l.experimental && l.bandwidth > 0) {
            match l.bandwidth_type.as_str() {
                "AS" => {
                    b.as_kbps
                        .get_or_insert(u32::try_from(l.bandwidth).unwrap_or(u32::MAX));
                }
                "TIAS" => {
                    b.tias_bps.get_or_insert(l.bandwidth);
                }
                _ => {}
            }
        }
        b
    }

    fn or(self, session: Bandwidth) -> Bandwidth {
        Bandwidth {
            as_kbps: self.as_kbps.or(session.as_kbps),
            tias_bps: self.tias_bps.or(session.tias_bps),
        }
    }
}

/// The formats of RFC 3551's static table that matter to a rate (the
/// encoding, the clock, the channels), for `m=` lines without `a=rtpmap`.
fn static_format(pt: u8) -> Option<(&'static str, u32, u8)> {
    Some(match pt {
        0 => ("PCMU", 8000, 1),
        3 => ("GSM", 8000, 1),
        4 => ("G723", 8000, 1),
        8 => ("PCMA", 8000, 1),
        9 => ("G722", 8000, 1),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        13 => ("CN", 8000, 1),
        18 => ("G729", 8000, 1),
        _ => return None,
    })
}

/// Formats that carry no voice of their own: DTMF events (RFC 4733),
/// comfort noise (RFC 3389), redundancy (RFC 2198) and FEC wrappers.
fn is_auxiliary(name: &str) -> bool {
    ["telephone-event", "CN", "red", "ulpfec", "flexfec", "rtx"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

/// The first media-carrying format of a section, named by its
/// `a=rtpmap:` or the static table.
fn first_codec(md: &sdp::description::media::MediaDescription) -> Option<Codec> {
    let rtpmap = |pt: u8| -> Option<(String, u32, u8)> {
        md.attributes
            .iter()
            .filter(|a| a.key == "rtpmap")
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| {
                let (n, rest) = v.trim().split_once(char::is_whitespace)?;
                (n.parse::<u8>().ok()? == pt).then_some(())?;
                let mut parts = rest.trim().split('/');
                let name = parts.next()?.to_string();
                let clock = parts.next()?.trim().parse().ok()?;
                let channels = parts
                    .next()
                    .and_then(|c| c.trim().parse().ok())
                    .unwrap_or(1);
                Some((name, clock, channels))
            })
    };
    let fmtp_max = |pt: u8| -> Option<u32> {
        md.attributes
            .iter()
            .filter(|a| a.key == "fmtp")
            .filter_map(|a| a.value.as_deref())
            .find_map(|v| {
                let (n, params) = v.trim().split_once(char::is_whitespace)?;
                (n.parse::<u8>().ok()? == pt).then_some(())?;
                params.split(';').find_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim()
                        .eq_ignore_ascii_case("maxaveragebitrate")
                        .then(|| v.trim().parse().ok())?
                })
            })
    };
    md.media_name.formats.iter().find_map(|f| {
        let pt: u8 = f.parse().ok().filter(|pt| *pt < 128)?;
        let (name, clock_hz, channels) =
            rtpmap(pt).or_else(|| static_format(pt).map(|(n, c, ch)| (n.to_string(), c, ch)))?;
        (!is_auxiliary(&name)).then(|| Codec {
            payload_type: pt,
            name,
            clock_hz,
            channels: channels.max(1),
            max_average_bps: fmtp_max(pt),
        })
    })
}

impl Media {
    /// The port RTCP for this stream uses: `a=rtcp:` if given, the RTP port
    /// under `a=rtcp-mux`, else RTP port + 1 (RFC 3550 §11). `None` for a
    /// disabled stream (port 0).
    pub fn effective_rtcp_port(&self) -> Option<u16> {
        if self.port == 0 {
            return None;
        }
        if let Some(p) = self.rtcp_port {
            return Some(p);
        }
        if self.rtcp_mux {
            return Some(self.port);
        }
        self.port.checked_add(1)
    }
}

impl Sdp {
    /// Parses an SDP body (CRLF or bare LF line ends).
    pub fn parse(body: &[u8]) -> Result<Sdp, SipError> {
        let text =
            std::str::from_utf8(body).map_err(|_| SipError::Sdp("body is not UTF-8".into()))?;
        if !text.trim_start().starts_with("v=") {
            return Err(SipError::Sdp("does not start with v=".into()));
        }
        // Fallback on top of the `sdp` crate: it rejects any m= transport
        // outside its fixed list (UDP/BFCP, TCP/RTP/AVP, TCP/MSRP, ...), which
        // would throw away a whole offer for one unusual stream. Each m=
        // line's transport is swapped for one it accepts and restored after.
        let (text, protos) = neutralise_m_protos(text);
        let desc = sdp::SessionDescription::unmarshal(&mut Cursor::new(text.as_bytes()))
            .map_err(|e| SipError::Sdp(e.to_string()))?;
        if desc.media_descriptions.len() != protos.len() {
            return Err(SipError::Sdp("m= lines do not match media sections".into()));
        }
        let mut media = Vec::with_capacity(desc.media_descriptions.len());
        let session_bw = Bandwidth::read(&desc.bandwidth);
        for (md, proto) in desc.media_descriptions.iter().zip(protos) {
            let port = u16::try_from(md.media_name.port.value)
                .map_err(|_| SipError::Sdp(format!("bad port {}", md.media_name.port.value)))?;
            let mut m = Media {
                kind: md.media_name.media.clone(),
                port,
                proto,
                connection: md.connection_information.as_ref().and_then(connection_ip),
                direction: None,
                rtcp_port: None,
                rtcp_mux: false,
                codec: first_codec(md),
                ptime_ms: None,
                bandwidth: Bandwidth::read(&md.bandwidth).or(session_bw),
            };
            for a in &md.attributes {
                if let Some(d) = Direction::from_attribute(&a.key) {
                    m.direction.get_or_insert(d);
                } else if a.key == "rtcp" {
                    // Port 0 is no port (the fuzzer's `a=rtcp:00`): ignored
                    // like an unreadable one, so RTP + 1 applies.
                    m.rtcp_port = a
                        .value
                        .as_deref()
                        .and_then(|v| v.split_whitespace().next())
                        .and_then(|p| p.parse().ok())
                        .filter(|p| *p != 0);
                } else if a.key == "rtcp-mux" {
                    m.rtcp_mux = true;
                } else if a.key == "ptime" {
                    m.ptime_ms = a
                        .value
                        .as_deref()
                        .and_then(|v| v.trim().parse::<f32>().ok())
                        .filter(|p| p.is_finite() && *p >= 1.0 && *p <= 1000.0)
                        .map(|p| p.round() as u16);
                }
            }
            media.push(m);
        }
        Ok(Sdp {
            connection: desc.connection_information.as_ref().and_then(connection_ip),
            direction: desc
                .attributes
                .iter()
                .find_map(|a| Direction::from_attribute(&a.key)),
            media,
        })
    }

    /// The stream hold detection looks at: the first audio stream, else the
    /// first stream of any kind.
    pub fn main_media(&self) -> Option<&Media> {
        self.media
            .iter()
            .find(|m| m.kind == "audio")
            .or_else(|| self.media.first())
    }

    /// Whether this description puts the call on hold (RFC 3264 §8.4, RFC 6337
    /// §5.3): the main stream's effective direction (media-level attribute,
    /// else session-level) is `sendonly` or `inactive`, or its effective
    /// connection address (media `c=`, else session `c=`) is unspecified
    /// (`0.0.0.0`, the RFC 2543 convention, or `::`). `sendrecv`, `recvonly`
    /// or no attribute is not hold.
    pub fn is_hold(&self) -> bool {
        self.hold_cause().is_some()
    }

    /// What in this description means hold (`"sendonly"`, `"inactive"`,
    /// `"c=0.0.0.0"`), `None` when it means the call is active; see
    /// [`Sdp::is_hold`].
    pub fn hold_cause(&self) -> Option<HoldSaid> {
        let (direction, connection) = match self.main_media() {
            Some(m) => (
                m.direction.or(self.direction),
                m.connection.or(self.connection),
            ),
            None => (self.direction, self.connection),
        };
        match direction {
            Some(Direction::SendOnly) => Some(HoldSaid::SendOnly),
            Some(Direction::Inactive) => Some(HoldSaid::Inactive),
            _ => connection
                .is_some_and(|ip| ip.is_unspecified())
                .then_some(HoldSaid::NullAddress),
        }
    }

    /// `(address, RTP port)` of each enabled stream (port not 0) whose
    /// address is known (media `c=`, else session `c=`). RTCP ports are in
    /// [`Media::effective_rtcp_port`].
    pub fn media_endpoints(&self) -> Vec<(IpAddr, u16)> {
        self.media
            .iter()
            .filter(|m| m.port != 0)
            .filter_map(|m| m.connection.or(self.connection).map(|ip| (ip, m.port)))
            .collect()
    }
}

/// The `c=` address as an IP; multicast `addr/ttl[/count]` keeps the address.
/// A host name (allowed by RFC 4566 but unresolvable here) gives `None`.
fn connection_ip(c: &sdp::description::common::ConnectionInformation) -> Option<IpAddr> {
    let addr = c.address.as_ref()?;
    let ip = addr.address.split('/').next()?;
    ip.parse().ok()
}

/// Returns `text` with each m= line's transport replaced by `RTP/AVP`, and
/// the original transports in m= line order.
fn neutralise_m_protos(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut protos = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("m=") {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.len() >= 3 {
                protos.push(fields[2].to_string());
                out.push_str("m=");
                out.push_str(fields[0]);
                out.push(' ');
                out.push_str(fields[1]);
                out.push_str(" RTP/AVP");
                for f in &fields[3..] {
                    out.push(' ');
                    out.push_str(f);
                }
                out.push_str("\r\n");
                continue;
            }
            // Too short: the crate rejects it, with its own message.
            protos.push(String::new());
        }
        out.push_str(line);
    }
    (out, protos)
}

/// Parses one UDP payload as a SIP message. `default_country` (ISO 3166
/// region such as `"US"`) is the numbering plan for caller numbers written
/// without a country code.
pub fn parse(payload: &[u8], default_country: &str) -> Result<SipMessage, SipError> {
    // RFC 5626 §3.5.1 keep-alives and stray CRLFs before the start line
    // (RFC 3261 §7.5) are skipped.
    let start = payload
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .ok_or(SipError::NotSip("empty or only line breaks"))?;
    let payload = &payload[start..];

    let line_end = payload.iter().position(|b| *b == b'\n');
    let first = &payload[..line_end.unwrap_or(payload.len())];
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    let start_line = StartLine::parse(first)?;
    let Some(line_end) = line_end else {
        return Err(SipError::Truncated(
            "no line break after the start line".into(),
        ));
    };

    let rest = &payload[line_end + 1..];
    let (headers_raw, body) = split_headers(rest)
        .ok_or_else(|| SipError::Truncated("no blank line after the headers".into()))?;
    let headers_text: Cow<'_, str> = String::from_utf8_lossy(headers_raw);
    let headers = Headers::read(&headers_text);

    let body = match headers.content_length {
        Some(Err(())) => return Err(SipError::Malformed("Content-Length is not a number".into())),
        Some(Ok(len)) if len > body.len() => {
            return Err(SipError::Truncated(format!(
                "Content-Length {len} but {} body bytes",
                body.len()
            )));
        }
        // RFC 3261 §18.3: bytes past Content-Length in a datagram are
        // discarded.
        Some(Ok(len)) => &body[..len],
        None => body,
    };
    let (sdp, sdp_error) = match read_sdp(headers.content_type.as_deref(), body) {
        None => (None, None),
        Some(Ok(s)) => (Some(s), None),
        Some(Err(e)) => (None, Some(e)),
    };

    Ok(match start_line {
        StartLine::Request { method, uri } => SipMessage::Request(SipRequest {
            method,
            request_uri: uri,
            call_id: headers.call_id,
            caller: headers
                .pai
                .iter()
                .find_map(|v| caller_from(v, default_country))
                .or_else(|| {
                    headers
                        .from
                        .as_deref()
                        .and_then(|v| caller_from(v, default_country))
                }),
            promo_code: headers.promo_code,
            cseq: headers.cseq,
            sdp,
            sdp_error,
        }),
        StartLine::Response { status, reason } => SipMessage::Response(SipResponse {
            status,
            reason,
            call_id: headers.call_id,
            cseq: headers.cseq,
            sdp,
            sdp_error,
        }),
    })
}

enum StartLine {
    Request { method: String, uri: String },
    Response { status: u16, reason: String },
}

impl StartLine {
    /// RFC 3261 §7.1 Request-Line and §7.2 Status-Line.
    fn parse(line: &[u8]) -> Result<StartLine, SipError> {
        let line =
            std::str::from_utf8(line).map_err(|_| SipError::NotSip("start line is not UTF-8"))?;
        if let Some(rest) = strip_prefix_ignore_case(line, "SIP/2.0 ") {
            let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(SipError::NotSip("status code is not three digits"));
            }
            let status: u16 = code
                .parse()
                .map_err(|_| SipError::NotSip("status code is not three digits"))?;
            if !(100..=699).contains(&status) {
                return Err(SipError::NotSip("status code out of range 100-699"));
            }
            return Ok(StartLine::Response {
                status,
                reason: reason.trim().to_string(),
            });
        }
        let mut parts = line.split(' ');
        let (Some(method), Some(uri), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SipError::NotSip("no SIP request or status line"));
        };
        if !version.eq_ignore_ascii_case("SIP/2.0") {
            return Err(SipError::NotSip("no SIP/2.0 version in the start line"));
        }
        if method.is_empty() || !method.bytes().all(is_token_byte) {
            return Err(SipError::NotSip("method is not a token"));
        }
        if uri.is_empty() || !uri.contains(':') || uri.bytes().any(|b| b.is_ascii_control()) {
            return Err(SipError::NotSip("Request-URI is not a URI"));
        }
        Ok(StartLine::Request {
            // Methods are case-sensitive on the wire (RFC 3261 §7.1); callers
            // here compare against the upper-case standard names.
            method: method.to_ascii_uppercase(),
            uri: uri.to_string(),
        })
    }
}

/// RFC 3261 §25.1 `token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// Splits the bytes after the start line at the first empty line (CRLF or
/// bare LF). `None` when there is none.
fn split_headers(rest: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut at = 0;
    while at <= rest.len() {
        let end = rest[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|i| at + i)?;
        let line = &rest[at..end];
        if line.is_empty() || line == b"\r" {
            return Some((&rest[..at], &rest[end + 1..]));
        }
        at = end + 1;
    }
    None
}

/// The headers this module reads; for single-valued headers the first
/// usable occurrence wins.
#[derive(Default)]
struct Headers {
    call_id: Option<String>,
    cseq: Option<(u32, String)>,
    from: Option<String>,
    pai: Vec<String>,
    promo_code: Option<String>,
    content_type: Option<String>,
    content_length: Option<Result<usize, ()>>,
}

impl Headers {
    fn read(block: &str) -> Headers {
        let mut h = Headers::default();
        for (name, value) in sip_header::extract_all_headers(block) {
            if name.eq_ignore_ascii_case("X-Promo-Code") {
                if h.promo_code.is_none() {
                    h.promo_code = Some(value.trim().to_string()).filter(|v| !v.is_empty());
                }
                continue;
            }
            let Ok(header) = SipHeader::parse_name(&name) else {
                continue;
            };
            match header {
                SipHeader::CallId if h.call_id.is_none() => {
                    h.call_id = Some(value.trim().to_string()).filter(|v| !v.is_empty());
                }
                SipHeader::Cseq if h.cseq.is_none() => h.cseq = parse_cseq(&value),
                SipHeader::From if h.from.is_none() => h.from = Some(value),
                SipHeader::PAssertedIdentity => h.pai.push(value),
                SipHeader::ContentType if h.content_type.is_none() => {
                    h.content_type = Some(value);
                }
                SipHeader::ContentLength if h.content_length.is_none() => {
                    h.content_length = Some(value.trim().parse().map_err(|_| ()));
                }
                _ => {}
            }
        }
        h
    }
}

/// `CSeq: 4711 INVITE` (RFC 3261 §20.16).
fn parse_cseq(value: &str) -> Option<(u32, String)> {
    let mut parts = value.split_whitespace();
    let seq = parts.next()?.parse().ok()?;
    let method = parts.next()?;
    if parts.next().is_some() || !method.bytes().all(is_token_byte) {
        return None;
    }
    Some((seq, method.to_ascii_uppercase()))
}

/// The SDP in a body: parsed when Content-Type is application/sdp, or when
/// there is no Content-Type and the body starts with `v=0`. `None` when the
/// body is not SDP or is empty.
fn read_sdp(content_type: Option<&str>, body: &[u8]) -> Option<Result<Sdp, SipError>> {
    let is_sdp = match content_type {
        Some(ct) => ct
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/sdp")),
        None => body.trim_ascii_start().starts_with(b"v=0"),
    };
    if !is_sdp || body.trim_ascii().is_empty() {
        return None;
    }
    Some(Sdp::parse(body))
}

/// The E.164 number of the first address in a From or P-Asserted-Identity
/// value that holds one.
fn caller_from(value: &str, default_country: &str) -> Option<String> {
    sip_header::split_comma_entries(value)
        .into_iter()
        .filter_map(|entry| entry.trim().parse::<SipHeaderAddr>().ok())
        .find_map(|addr| number_of_addr(&addr, default_country))
}

fn number_of_addr(addr: &SipHeaderAddr, default_country: &str) -> Option<String> {
    if let Some(tel) = addr.tel_uri() {
        return normalize_number(
            tel.number(),
            param(tel.params(), "phone-context"),
            default_country,
        );
    }
    let sip = addr.sip_uri()?;
    normalize_number(
        sip.user()?,
        param(sip.user_params(), "phone-context"),
        default_country,
    )
}

fn param<'a>(params: &'a [(String, Option<String>)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_deref())
}

/// Normalises a telephone number to E.164 (`+14155550100`).
///
/// Accepts a bare number with RFC 3966 visual separators (`+1 (415)
/// 555-0100`, `415.555.0100`), a national number (`4155550100` with `"US"`),
/// a `tel:` URI, a `sip:`/`sips:` URI or name-addr whose user part is a
/// number, or such a user part alone (`+14155550100`, `14155550100`).
/// Returns `None` for anything that is not a number (`alice`), that has
/// letters, or whose length is impossible for its country.
pub fn normalize_e164(raw: &str, default_country: &str) -> Option<String> {
    let raw = raw.trim();
    let lower = raw.get(..5).unwrap_or(raw).to_ascii_lowercase();
    if raw.starts_with('<')
        || lower.starts_with("tel:")
        || lower.starts_with("sip:")
        || lower.starts_with("sips:")
    {
        let addr = raw.parse::<SipHeaderAddr>().ok()?;
        return number_of_addr(&addr, default_country);
    }
    normalize_number(raw, None, default_country)
}

/// Loads libphonenumber's numbering-plan data now rather than on the first
/// caller number (it is decoded lazily, once per process), so the first
/// INVITE after start-up is not the slow one.
pub fn preload_numbering_plans() {
    let _ = phonenumber::metadata::DATABASE.by_code(&1);
}

/// Longest digit string handed to libphonenumber: E.164's 15 digits plus
/// an international or national prefix.
const MAX_DIGITS: usize = 20;

fn normalize_number(number: &str, context: Option<&str>, default_country: &str) -> Option<String> {
    let (global, mut digits) = digits_of(number)?;
    let global = if global {
        true
    } else if let Some((true, ctx)) = context.and_then(digits_of) {
        // RFC 3966 §5.1.5: a local number with a global phone-context is
        // that prefix followed by the number.
        digits.insert_str(0, &ctx);
        true
    } else {
        false
    };
    if digits.len() > MAX_DIGITS {
        return None;
    }
    let region = default_country.trim().to_ascii_uppercase();
    // Fallback on top of `phonenumber`: given a default region, it strips
    // that region's national prefix from a foreign number too (with "US",
    // +44 1632 960000 becomes +44 632960000; with "GB", +39 06... loses its
    // 0). So a number in international form, written with `+` or dialled
    // with the region's international prefix (011, 00), is parsed with no
    // region, which applies the number's own country's rules.
    let international = if global {
        Some(digits.as_str())
    } else {
        strip_international_prefix(&region, &digits)
    };
    let pn = match international {
        Some(rest) => phonenumber::parse(None, format!("+{rest}")),
        None => phonenumber::parse(Some(region.parse::<country::Id>().ok()?), &digits),
    }
    .ok()?;
    let e164 = pn.format().mode(Mode::E164).to_string();
    is_possible_length(pn.code().value(), &e164).then_some(e164)
}

/// The digits after `region`'s international call prefix (`011` in the
/// US, `00` in most of Europe), if `digits` starts with it.
fn strip_international_prefix<'a>(region: &str, digits: &'a str) -> Option<&'a str> {
    let meta = phonenumber::metadata::DATABASE.by_id(region)?;
    let found = meta.international_prefix()?.find(digits)?;
    (found.start() == 0 && found.end() > 0).then(|| &digits[found.end()..])
}

/// The digits of a number written with only digits, a leading `+` and RFC
/// 3966 visual separators (plus space); `(is global, digits)`. Letters and
/// anything else make it not a number.
fn digits_of(s: &str) -> Option<(bool, String)> {
    let s = s.trim();
    let (global, rest) = match s.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return None,
        }
    }
    (!digits.is_empty()).then_some((global, digits))
}

/// libphonenumber's "is possible number" test: the national significant
/// number's length is one the country's numbering plan uses for some kind
/// of subscriber number. Stricter range validation is left out on purpose:
/// metadata lags new number ranges, and a caller must not lose their tier
/// to that.
fn is_possible_length(code: u16, e164: &str) -> bool {
    let nsn_len = e164.len().saturating_sub(1 + code.to_string().len());
    let Ok(nsn_len) = u16::try_from(nsn_len) else {
        return false;
    };
    // The crate leaves the general descriptor's lengths empty, so the union
    // libphonenumber would store there is taken over the subscriber number
    // types (not emergency or short codes).
    let possible = |m: &phonenumber::Metadata| {
        let d = m.descriptors();
        [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .chain(std::iter::once(d.general()))
        .any(|desc| desc.possible_length().contains(&nsn_len))
    };
    // Like libphonenumber, judge by the main country of a shared calling
    // code (the US for +1): a length only some smaller member uses for
    // local numbers would let national fragments through.
    phonenumber::metadata::DATABASE
        .by_code(&code)
        .and_then(|metas| {
            let main = metas.iter().find(|m| m.is_main_country_for_code());
            main.or(metas.first()).copied()
        })
        .is_some_and(possible)
}
