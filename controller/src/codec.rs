//! What a call's voice needs on the wire: from the SDP's codec, its
//! packetization (`a=ptime`) and bandwidth lines (`b=TIAS`, `b=AS`), the
//! rate a meter must let through per direction, whole Ethernet frames
//! counted as OVS meters count them. Pure: the session table keeps the
//! figure, `qos` turns it into meters.
//!
//! Knows nothing of sessions, switches or SIP beyond the parsed SDP.

use crate::sip::{Media, Sdp};

/// Bytes around each RTP payload on an Ethernet link: RTP 12, UDP 8,
/// IPv4 20, Ethernet header 14 and FCS 4 (G.711 at 20 ms: 160 + 58 bytes,
/// 50 a second, 87.2 kbit/s).
pub const OVERHEAD_BYTES: u32 = 12 + 8 + 20 + 14 + 4;

/// The packetization most voice endpoints use when `a=ptime` says nothing.
const DEFAULT_PTIME_MS: u16 = 20;

/// A call's need, as the session keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// kbit/s on the wire per direction, rounded up.
    pub kbps: u32,
    /// Where the figure came from.
    pub from: From,
}

/// What set the figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    /// The codec's bit rate from the table below, at the SDP's ptime.
    Codec(Known),
    /// `b=TIAS`, plus the headers at the SDP's ptime.
    Tias,
    /// `b=AS`, plus Ethernet framing at the SDP's ptime.
    As,
}

/// Codecs whose bit rate is a fact of the codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Pcmu,
    Pcma,
    G722,
    G729,
    Gsm,
    G723,
    Ilbc,
    Opus,
    L16,
}

impl Known {
    fn of(name: &str) -> Option<Known> {
        let n = name.to_ascii_uppercase();
        Some(match n.as_str() {
            "PCMU" => Known::Pcmu,
            "PCMA" => Known::Pcma,
            "G722" => Known::G722,
            "G729" | "G729A" | "G729AB" => Known::G729,
            "GSM" => Known::Gsm,
            "G723" => Known::G723,
            "ILBC" => Known::Ilbc,
            "OPUS" => Known::Opus,
            "L16" => Known::L16,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Known::Pcmu => "PCMU",
            Known::Pcma => "PCMA",
            Known::G722 => "G722",
            Known::G729 => "G729",
            Known::Gsm => "GSM",
            Known::G723 => "G723",
            Known::Ilbc => "iLBC",
            Known::Opus => "opus",
            Known::L16 => "L16",
        }
    }

    /// The payload bit rate at `ptime_ms`, and the packetization the
    /// codec uses when the SDP gives none.
    fn bps(self, codec: &crate::sip::Codec, ptime_ms: Option<u16>) -> (u64, u16) {
        match self {
            Known::Pcmu | Known::Pcma | Known::G722 => (64_000, DEFAULT_PTIME_MS),
            Known::G729 => (8_000, DEFAULT_PTIME_MS),
            Known::Gsm => (13_200, DEFAULT_PTIME_MS),
            Known::G723 => (6_300, 30),
            // RFC 3952: 20 ms frames at 15.2 kbit/s, 30 ms at 13.33.
            Known::Ilbc => match ptime_ms {
                Some(p) if p % 30 == 0 => (13_334, 30),
                _ => (15_200, DEFAULT_PTIME_MS),
            },
            // RFC 7587: the sender's own choice up to 510 kbit/s; a voice
            // call's usual ceiling unless the format says its own.
            Known::Opus => (
                u64::from(codec.max_average_bps.unwrap_or(40_000)),
                DEFAULT_PTIME_MS,
            ),
            Known::L16 => (
                u64::from(codec.clock_hz) * 16 * u64::from(codec.channels.max(1)),
                DEFAULT_PTIME_MS,
            ),
        }
    }
}

/// The main audio stream's need, `None` when the SDP says too little
/// (no stream, an unknown codec without bandwidth lines).
pub fn need(sdp: &Sdp) -> Option<Need> {
    let m = sdp.main_media().filter(|m| m.port != 0)?;
    need_of(m)
}

fn need_of(m: &Media) -> Option<Need> {
    let known = m
        .codec
        .as_ref()
        .and_then(|c| Known::of(&c.name).map(|k| (k, c)));
    let ptime = |default: u16| u32::from(m.ptime_ms.unwrap_or(default).max(1));
    let on_wire = |payload_bps: u64, ptime_ms: u32| -> u32 {
        // Packets a second, headers on each.
        let pps = 1000.0 / f64::from(ptime_ms);
        let bps = payload_bps as f64 + pps * f64::from(OVERHEAD_BYTES) * 8.0;
        (bps / 1000.0).ceil().min(f64::from(u32::MAX)) as u32
    };
    let default_ptime = known.map_or(DEFAULT_PTIME_MS, |(k, c)| k.bps(c, m.ptime_ms).1);
    if let Some(tias) = m.bandwidth.tias_bps {
        return Some(Need {
            kbps: on_wire(tias, ptime(default_ptime)),
            from: From::Tias,
        });
    }
    if let Some((k, c)) = known {
        let (bps, p) = k.bps(c, m.ptime_ms);
        return Some(Need {
            kbps: on_wire(bps, ptime(p)),
            from: From::Codec(k),
        });
    }
    let as_kbps = m.bandwidth.as_kbps?;
    // AS counts RTP, UDP and IP: only the Ethernet framing is added.
    let pps = 1000.0 / f64::from(ptime(default_ptime));
    let eth_kbps = pps * 18.0 * 8.0 / 1000.0;
    Some(Need {
        kbps: (f64::from(as_kbps) + eth_kbps)
            .ceil()
            .min(f64::from(u32::MAX)) as u32,
        from: From::As,
    })
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.from {
            From::Codec(k) => write!(f, "{} kbit/s ({} on the wire)", self.kbps, k.as_str()),
            From::Tias => write!(f, "{} kbit/s (b=TIAS on the wire)", self.kbps),
            From::As => write!(f, "{} kbit/s (b=AS on the wire)", self.kbps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(media: &str) -> Sdp {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n{media}"
        );
        Sdp::parse(text.as_bytes()).expect("test SDP parses")
    }

    fn kbps(media: &str) -> Option<u32> {
        need(&sdp(media)).map(|n| n.kbps)
    }

    #[test]
    fn g711_at_20_ms_is_87_kbit_s_on_the_wire() {
        assert_eq!(kbps("m=audio 4000 RTP/AVP 0 101\r\n"), Some(88));
        assert_eq!(
            kbps("m=audio 4000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\n"),
            Some(88)
        );
        // Longer packets, fewer headers.
        assert_eq!(kbps("m=audio 4000 RTP/AVP 0\r\na=ptime:30\r\n"), Some(80));
        assert_eq!(
            need(&sdp("m=audio 4000 RTP/AVP 0\r\n")).map(|n| n.to_string()),
            Some("88 kbit/s (PCMU on the wire)".into())
        );
    }

    #[test]
    fn dtmf_and_comfort_noise_are_not_the_codec() {
        let s = "m=audio 4000 RTP/AVP 101 13 18\r\na=rtpmap:101 telephone-event/8000\r\n";
        // G.729: 8 kbit/s of voice, 23.2 of headers.
        assert_eq!(kbps(s), Some(32));
    }

    #[test]
    fn bandwidth_lines_when_the_codec_says_nothing() {
        let dyn_pt = "m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 AMR-WB/16000\r\n";
        assert_eq!(kbps(dyn_pt), None, "an unknown codec without b= lines");
        assert_eq!(
            kbps("m=audio 4000 RTP/AVP 96\r\nb=TIAS:23850\r\na=rtpmap:96 AMR-WB/16000\r\n"),
            Some(48)
        );
        assert_eq!(
            kbps("m=audio 4000 RTP/AVP 96\r\nb=AS:30\r\na=rtpmap:96 AMR-WB/16000\r\n"),
            Some(38)
        );
        // TIAS beats the codec's own figure (the sender says less).
        assert_eq!(
            kbps("m=audio 4000 RTP/AVP 96\r\nb=TIAS:20000\r\na=rtpmap:96 opus/48000/2\r\n"),
            Some(44)
        );
        assert_eq!(
            kbps(
                "m=audio 4000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\na=fmtp:96 maxaveragebitrate=64000; useinbandfec=1\r\n"
            ),
            Some(88)
        );
    }

    #[test]
    fn a_disabled_or_missing_stream_needs_nothing() {
        assert_eq!(kbps("m=audio 0 RTP/AVP 0\r\n"), None);
        assert_eq!(kbps(""), None);
        assert_eq!(kbps("m=audio 4000 RTP/AVP 0\r\na=ptime:0\r\n"), Some(88));
    }
}
