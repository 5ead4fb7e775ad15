//! Tests of `tierflow::sip`: real-world SIP messages (a sipp capture and
//! Asterisk/Linphone-shaped fixtures under `tests/sip/`), header and URI
//! variants, SDP hold and media cases, and inputs that must fail cleanly.
//! Everything sits in `mod sip` so `cargo test -p tierflow sip` selects it.

mod sip {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;
    use tierflow::sip::{
        Bandwidth, Codec, Direction, Media, Sdp, SipError, SipMessage, SipRequest, SipResponse,
        normalize_e164, parse,
    };

    const SIPP_UAC: &[u8] = include_bytes!("sip/sipp_uac_invite.sip");
    const ASTERISK_INVITE: &[u8] = include_bytes!("sip/asterisk_invite_pai.sip");
    const ASTERISK_200: &[u8] = include_bytes!("sip/asterisk_200_ok.sip");
    const ASTERISK_HOLD: &[u8] = include_bytes!("sip/asterisk_reinvite_hold.sip");
    const LINPHONE_INVITE: &[u8] = include_bytes!("sip/linphone_invite.sip");
    const COMPACT_LF: &[u8] = include_bytes!("sip/compact_invite_lf.sip");
    const FIXTURES: &[&[u8]] = &[
        SIPP_UAC,
        ASTERISK_INVITE,
        ASTERISK_200,
        ASTERISK_HOLD,
        LINPHONE_INVITE,
        COMPACT_LF,
    ];

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn request(payload: &[u8]) -> SipRequest {
        match parse(payload, "US") {
            Ok(SipMessage::Request(r)) => r,
            other => panic!("expected a request, got {other:?}"),
        }
    }

    fn response(payload: &[u8]) -> SipResponse {
        match parse(payload, "US") {
            Ok(SipMessage::Response(r)) => r,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    /// A message from a start line, header lines and a body, with a correct
    /// Content-Length appended, joined with `eol`.
    fn message(start: &str, headers: &[&str], body: &str, eol: &str) -> Vec<u8> {
        let body = body.replace('\n', eol);
        let mut lines = vec![start.to_string()];
        lines.extend(headers.iter().map(|h| h.to_string()));
        lines.push(format!("Content-Length: {}", body.len()));
        let mut out = lines.join(eol);
        out.push_str(eol);
        out.push_str(eol);
        out.push_str(&body);
        out.into_bytes()
    }

    fn invite(headers: &[&str], body: &str) -> Vec<u8> {
        let mut all = vec![
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-t1",
            "To: <sip:support@10.0.0.100>",
            "Call-ID: t1@10.0.0.1",
            "CSeq: 1 INVITE",
        ];
        all.extend_from_slice(headers);
        message("INVITE sip:support@10.0.0.100 SIP/2.0", &all, body, "\r\n")
    }

    fn caller_of(headers: &[&str]) -> Option<String> {
        request(&invite(headers, "")).caller
    }

    fn sdp(text: &str) -> Sdp {
        match Sdp::parse(text.as_bytes()) {
            Ok(s) => s,
            Err(e) => panic!("SDP should parse: {e}\n{text}"),
        }
    }

    const SDP_HEAD: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n";

    fn audio(port: u16, proto: &str) -> Media {
        Media {
            kind: "audio".into(),
            port,
            proto: proto.into(),
            connection: None,
            direction: None,
            rtcp_port: None,
            rtcp_mux: false,
            codec: None,
            ptime_ms: None,
            bandwidth: Bandwidth::default(),
        }
    }

    fn codec(payload_type: u8, name: &str, clock_hz: u32, channels: u8) -> Option<Codec> {
        Some(Codec {
            payload_type,
            name: name.into(),
            clock_hz,
            channels,
            max_average_bps: None,
        })
    }

    // ---- real-world messages -------------------------------------------

    #[test]
    fn sipp_builtin_uac_invite() {
        // Captured from `sipp -sn uac -s 4155550100 -i 127.0.0.1`.
        let r = request(SIPP_UAC);
        assert_eq!(
            r,
            SipRequest {
                method: "INVITE".into(),
                request_uri: "sip:4155550100@127.0.0.1:15099".into(),
                call_id: Some("1-8699@127.0.0.1".into()),
                // From is `sipp <sip:sipp@...>`: no number.
                caller: None,
                promo_code: None,
                cseq: Some((1, "INVITE".into())),
                sdp: Some(Sdp {
                    connection: Some(v4(127, 0, 0, 1)),
                    direction: None,
                    media: vec![Media {
                        codec: codec(0, "PCMU", 8000, 1),
                        ..audio(6000, "RTP/AVP")
                    }],
                }),
                sdp_error: None,
            }
        );
        let s = r.sdp.as_ref().map(|s| (s.is_hold(), s.media_endpoints()));
        assert_eq!(s, Some((false, vec![(v4(127, 0, 0, 1), 6000)])));
    }

    #[test]
    fn asterisk_invite_takes_caller_from_p_asserted_identity() {
        let r = request(ASTERISK_INVITE);
        assert_eq!(r.method, "INVITE");
        assert_eq!(r.request_uri, "sip:support@10.0.0.100:5060");
        assert_eq!(
            r.call_id.as_deref(),
            Some("8f3a2c1e-4b5d-4e6f-9a7b-1c2d3e4f5a6b")
        );
        // From is sip:alice@...; the number comes from P-Asserted-Identity.
        assert_eq!(r.caller.as_deref(), Some("+14155550100"));
        assert_eq!(r.promo_code.as_deref(), Some("SPRING"));
        assert_eq!(r.cseq, Some((20171, "INVITE".into())));
        assert_eq!(r.sdp_error, None);
        let s = r.sdp.expect("SDP offer");
        assert_eq!(s.connection, Some(v4(10, 0, 0, 1)));
        assert_eq!(s.direction, None);
        assert_eq!(
            s.media,
            vec![Media {
                direction: Some(Direction::SendRecv),
                codec: codec(0, "PCMU", 8000, 1),
                ptime_ms: Some(20),
                ..audio(10004, "RTP/AVP")
            }]
        );
        assert!(!s.is_hold());
        assert_eq!(s.media_endpoints(), vec![(v4(10, 0, 0, 1), 10004)]);
    }

    #[test]
    fn linphone_invite_with_audio_and_video() {
        let r = request(LINPHONE_INVITE);
        // From: "Bob Jones" <sip:+1-415-555-0123@...;user=phone>
        assert_eq!(r.caller.as_deref(), Some("+14155550123"));
        assert_eq!(r.call_id.as_deref(), Some("kL3mN4oP5q"));
        assert_eq!(r.cseq, Some((20, "INVITE".into())));
        assert_eq!(r.promo_code, None);
        let s = r.sdp.expect("SDP offer");
        assert_eq!(s.connection, Some(v4(192, 168, 1, 20)));
        assert_eq!(s.direction, None);
        assert_eq!(
            s.media,
            vec![
                Media {
                    rtcp_port: Some(7079),
                    codec: codec(96, "opus", 48000, 2),
                    ..audio(7078, "RTP/AVP")
                },
                Media {
                    kind: "video".into(),
                    rtcp_port: Some(9079),
                    codec: codec(96, "VP8", 90000, 1),
                    ..audio(9078, "RTP/AVP")
                },
            ]
        );
        assert_eq!(
            s.media_endpoints(),
            vec![(v4(192, 168, 1, 20), 7078), (v4(192, 168, 1, 20), 9078)]
        );
        assert!(!s.is_hold());
    }

    #[test]
    fn compact_headers_with_bare_lf() {
        let r = request(COMPACT_LF);
        assert_eq!(r.call_id.as_deref(), Some("compact-call-1@10.0.0.7"));
        // f: Carol <tel:+1-415-555-0177>
        assert_eq!(r.caller.as_deref(), Some("+14155550177"));
        // x-promo-code in lower case.
        assert_eq!(r.promo_code.as_deref(), Some("WINTER"));
        // c: application/sdp and l: <len>.
        let s = r.sdp.expect("SDP offer");
        assert_eq!(
            s.media,
            vec![Media {
                codec: codec(0, "PCMU", 8000, 1),
                ..audio(20000, "RTP/AVP")
            }]
        );
        assert_eq!(s.media_endpoints(), vec![(v4(10, 0, 0, 7), 20000)]);
    }

    #[test]
    fn asterisk_200_ok_with_sdp_answer() {
        let r = response(ASTERISK_200);
        assert_eq!(r.status, 200);
        assert_eq!(r.reason, "OK");
        assert_eq!(
            r.call_id.as_deref(),
            Some("8f3a2c1e-4b5d-4e6f-9a7b-1c2d3e4f5a6b")
        );
        assert_eq!(r.cseq, Some((20171, "INVITE".into())));
        let s = r.sdp.expect("SDP answer");
        assert!(!s.is_hold());
        assert_eq!(s.media_endpoints(), vec![(v4(10, 0, 0, 100), 16384)]);
        assert_eq!(s.media[0].effective_rtcp_port(), Some(16385));
    }

    #[test]
    fn asterisk_reinvite_sendonly_is_hold() {
        let r = request(ASTERISK_HOLD);
        assert_eq!(r.cseq, Some((20172, "INVITE".into())));
        let s = r.sdp.expect("SDP offer");
        assert_eq!(s.media[0].direction, Some(Direction::SendOnly));
        assert!(s.is_hold());
        // Held, but the stream keeps its address and port.
        assert_eq!(s.media_endpoints(), vec![(v4(10, 0, 0, 1), 10004)]);
    }

    #[test]
    fn message_accessors() {
        let m = parse(ASTERISK_200, "US").expect("parses");
        assert_eq!(m.call_id(), Some("8f3a2c1e-4b5d-4e6f-9a7b-1c2d3e4f5a6b"));
        assert_eq!(m.sdp().map(|s| s.media.len()), Some(1));
    }

    // ---- responses and other methods -----------------------------------

    #[test]
    fn ringing_response_without_body() {
        let m = message(
            "SIP/2.0 180 Ringing",
            &[
                "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-t1",
                "From: <sip:alice@10.0.0.1>;tag=a",
                "To: <sip:support@10.0.0.100>;tag=b",
                "Call-ID: t1@10.0.0.1",
                "CSeq: 1 INVITE",
            ],
            "",
            "\r\n",
        );
        assert_eq!(
            response(&m),
            SipResponse {
                status: 180,
                reason: "Ringing".into(),
                call_id: Some("t1@10.0.0.1".into()),
                cseq: Some((1, "INVITE".into())),
                sdp: None,
                sdp_error: None,
            }
        );
    }

    #[test]
    fn response_reason_with_spaces_and_empty_reason() {
        let m = message(
            "SIP/2.0 486 Busy Here",
            &["Call-ID: x", "CSeq: 1 INVITE"],
            "",
            "\r\n",
        );
        assert_eq!(
            (response(&m).status, response(&m).reason.as_str()),
            (486, "Busy Here")
        );
        let m = message("SIP/2.0 503 ", &["Call-ID: x"], "", "\n");
        assert_eq!(
            (response(&m).status, response(&m).reason.as_str()),
            (503, "")
        );
    }

    #[test]
    fn bye_and_cancel() {
        for method in ["BYE", "CANCEL", "ACK", "OPTIONS"] {
            let m = message(
                &format!("{method} sip:support@10.0.0.100 SIP/2.0"),
                &[
                    "From: \"Alice\" <sip:+14155550100@10.0.0.1>;tag=a",
                    "Call-ID: t1@10.0.0.1",
                    &format!("CSeq: 2 {method}"),
                ],
                "",
                "\r\n",
            );
            let r = request(&m);
            assert_eq!(r.method, method);
            assert_eq!(r.cseq, Some((2, method.to_string())));
            assert_eq!(r.call_id.as_deref(), Some("t1@10.0.0.1"));
            assert_eq!(r.caller.as_deref(), Some("+14155550100"));
            assert_eq!(r.sdp, None);
        }
    }

    #[test]
    fn method_and_cseq_method_are_upper_cased() {
        let m = message(
            "invite sip:support@10.0.0.100 SIP/2.0",
            &["cseq: 7 invite"],
            "",
            "\r\n",
        );
        let r = request(&m);
        assert_eq!(
            (r.method.as_str(), r.cseq),
            ("INVITE", Some((7, "INVITE".into())))
        );
    }

    #[test]
    fn unparseable_cseq_is_none() {
        for cseq in [
            "CSeq: INVITE",
            "CSeq: 1",
            "CSeq: -1 INVITE",
            "CSeq: 99999999999 INVITE",
        ] {
            assert_eq!(request(&invite(&[], "")).cseq, Some((1, "INVITE".into())));
            let m = message("INVITE sip:a@b SIP/2.0", &["Call-ID: x", cseq], "", "\r\n");
            assert_eq!(request(&m).cseq, None, "{cseq}");
        }
    }

    // ---- header forms ----------------------------------------------------

    #[test]
    fn lowercase_header_names() {
        let m = message(
            "INVITE sip:support@10.0.0.100 SIP/2.0",
            &[
                "call-id: lower@10.0.0.1",
                "CSEQ: 3 INVITE",
                "from: <sip:alice@10.0.0.1>;tag=a",
                "p-asserted-identity: <tel:+14155550100>",
                "X-PROMO-CODE: LOUD",
                "content-type: application/sdp",
            ],
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\n",
            "\r\n",
        );
        // message() wrote "Content-Length"; lower-case it too.
        let m = String::from_utf8(m)
            .expect("utf-8")
            .replace("Content-Length", "content-length");
        let r = request(m.as_bytes());
        assert_eq!(r.call_id.as_deref(), Some("lower@10.0.0.1"));
        assert_eq!(r.cseq, Some((3, "INVITE".into())));
        assert_eq!(r.caller.as_deref(), Some("+14155550100"));
        assert_eq!(r.promo_code.as_deref(), Some("LOUD"));
        assert_eq!(
            r.sdp.map(|s| s.media_endpoints()),
            Some(vec![(v4(10, 0, 0, 1), 4000)])
        );
    }

    #[test]
    fn crlf_and_bare_lf_parse_alike() {
        let headers = [
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-t1",
            "From: \"Alice\" <sip:+14155550100@10.0.0.1>;tag=a",
            "Call-ID: eol@10.0.0.1",
            "CSeq: 1 INVITE",
            "X-Promo-Code: EOL",
            "Content-Type: application/sdp",
        ];
        let body = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\na=inactive\n";
        let crlf = request(&message("INVITE sip:s@h SIP/2.0", &headers, body, "\r\n"));
        let lf = request(&message("INVITE sip:s@h SIP/2.0", &headers, body, "\n"));
        assert_eq!(crlf, lf);
        assert_eq!(crlf.caller.as_deref(), Some("+14155550100"));
        assert_eq!(crlf.promo_code.as_deref(), Some("EOL"));
        assert_eq!(crlf.sdp.map(|s| s.is_hold()), Some(true));
    }

    #[test]
    fn folded_header_is_unfolded() {
        let m = message(
            "INVITE sip:s@h SIP/2.0",
            &[
                "Call-ID: fold@10.0.0.1",
                "P-Asserted-Identity: \"Alice Smith\"",
                "  <sip:+14155550100@pbx.example.com;user=phone>",
            ],
            "",
            "\r\n",
        );
        assert_eq!(request(&m).caller.as_deref(), Some("+14155550100"));
    }

    #[test]
    fn leading_crlf_before_start_line_is_skipped() {
        let mut m = b"\r\n\r\n".to_vec();
        m.extend_from_slice(ASTERISK_INVITE);
        assert_eq!(request(&m), request(ASTERISK_INVITE));
    }

    #[test]
    fn promo_code_present_absent_empty() {
        let promo = |h: &[&str]| request(&invite(h, "")).promo_code;
        assert_eq!(promo(&[]), None);
        assert_eq!(promo(&["X-Promo-Code:"]), None);
        assert_eq!(promo(&["X-Promo-Code:    "]), None);
        assert_eq!(promo(&["X-Promo-Code: SPRING"]), Some("SPRING".into()));
        assert_eq!(
            promo(&["X-Promo-Code:\tpass word \t"]),
            Some("pass word".into())
        );
        // The first occurrence wins.
        assert_eq!(
            promo(&["X-Promo-Code: FIRST", "X-Promo-Code: SECOND"]),
            Some("FIRST".into())
        );
    }

    #[test]
    fn non_utf8_header_bytes_do_not_stop_parsing() {
        let mut m = b"INVITE sip:s@h SIP/2.0\r\nSubject: caf\xe9\r\nCall-ID: latin1\r\n".to_vec();
        m.extend_from_slice(b"From: \"Jos\xe9\" <sip:+14155550100@h>\r\nContent-Length: 0\r\n\r\n");
        let r = request(&m);
        assert_eq!(r.call_id.as_deref(), Some("latin1"));
        assert_eq!(r.caller.as_deref(), Some("+14155550100"));
    }

    // ---- caller identity ---------------------------------------------------

    #[test]
    fn caller_from_various_uri_forms() {
        let cases: &[(&str, Option<&str>)] = &[
            ("From: <sip:+14155550100@h>;tag=1", Some("+14155550100")),
            ("From: sip:+14155550100@h;tag=1", Some("+14155550100")),
            (
                "From: \"Alice, Sales\" <sips:+14155550100@h>;tag=1",
                Some("+14155550100"),
            ),
            (
                "From: <sip:14155550100@h;user=phone>;tag=1",
                Some("+14155550100"),
            ),
            (
                "From: <sip:4155550100@h;user=phone>;tag=1",
                Some("+14155550100"),
            ),
            (
                "From: Bob <sip:+1-415-555-0100@h;user=phone>;tag=1",
                Some("+14155550100"),
            ),
            ("From: <tel:+1-415-555-0100>;tag=1", Some("+14155550100")),
            ("From: <tel:+1.415.555.0100>;tag=1", Some("+14155550100")),
            ("From: <tel:(415)555-0100>;tag=1", Some("+14155550100")),
            (
                "From: <tel:555-0100;phone-context=+1-415>;tag=1",
                Some("+14155550100"),
            ),
            (
                "From: <sip:555-0100;phone-context=+1-415@h;user=phone>;tag=1",
                Some("+14155550100"),
            ),
            ("From: <sip:%2B14155550100@h>;tag=1", Some("+14155550100")),
            ("From: <sip:+442079460000@h>;tag=1", Some("+442079460000")),
            ("f: <sip:+14155550100@h>;tag=1", Some("+14155550100")),
            ("From: \"Alice\" <sip:alice@h>;tag=1", None),
            ("From: \"4155550100\" <sip:alice@h>;tag=1", None),
            ("From: <sip:alice123456@h>;tag=1", None),
            ("From: <sip:911@h>;tag=1", None),
            (
                "From: Anonymous <sip:anonymous@anonymous.invalid>;tag=1",
                None,
            ),
            ("From: not an address at all", None),
        ];
        for (header, want) in cases {
            assert_eq!(caller_of(&[header]).as_deref(), *want, "{header}");
        }
    }

    #[test]
    fn p_asserted_identity_preferred_then_from() {
        let from = "From: <sip:+14155550199@h>;tag=1";
        assert_eq!(
            caller_of(&[from, "P-Asserted-Identity: <sip:+14155550100@h>"]).as_deref(),
            Some("+14155550100")
        );
        // PAI before From on the wire changes nothing.
        assert_eq!(
            caller_of(&["P-Asserted-Identity: <sip:+14155550100@h>", from]).as_deref(),
            Some("+14155550100")
        );
        // A PAI without a number falls back to From.
        assert_eq!(
            caller_of(&[from, "P-Asserted-Identity: \"Alice\" <sip:alice@h>"]).as_deref(),
            Some("+14155550199")
        );
        // A PAI with a sip name and a tel number (RFC 3325 §9.1) uses the tel.
        assert_eq!(
            caller_of(&[
                from,
                "P-Asserted-Identity: \"Alice\" <sip:alice@h>, <tel:+14155550100>"
            ])
            .as_deref(),
            Some("+14155550100")
        );
        // Two PAI headers: the first holding a number wins.
        assert_eq!(
            caller_of(&[
                from,
                "P-Asserted-Identity: <sip:alice@h>",
                "P-Asserted-Identity: <tel:+14155550111>",
            ])
            .as_deref(),
            Some("+14155550111")
        );
        // An unparseable PAI entry does not hide a good one after it.
        assert_eq!(
            caller_of(&[from, "P-Asserted-Identity: bogus, <tel:+14155550100>"]).as_deref(),
            Some("+14155550100")
        );
    }

    #[test]
    fn default_country_decides_national_numbers() {
        let m = invite(&["From: <sip:02079460000@h>;tag=1"], "");
        let caller = |country| match parse(&m, country) {
            Ok(SipMessage::Request(r)) => r.caller,
            other => panic!("{other:?}"),
        };
        assert_eq!(caller("GB").as_deref(), Some("+442079460000"));
        assert_eq!(caller("gb").as_deref(), Some("+442079460000"));
        // Not a possible US number, and no numbering plan for "ZZ" / "".
        assert_eq!(caller("US"), None);
        assert_eq!(caller("ZZ"), None);
        assert_eq!(caller(""), None);
    }

    #[test]
    fn normalize_e164_accepts() {
        let cases = [
            ("+1 (415) 555-0100", "US"),
            ("4155550100", "US"),
            ("(415) 555-0100", "US"),
            ("415.555.0100", "US"),
            ("14155550100", "US"),
            ("+14155550100", "US"),
            ("+14155550100", "ZZ"),
            ("+14155550100", ""),
            ("tel:+14155550100", "US"),
            ("TEL:+1-415-555-0100", "US"),
            ("tel:+1-415-555-0100", "GB"),
            ("sip:+14155550100@example.com", "US"),
            ("sips:14155550100@example.com;user=phone", "US"),
            ("<sip:4155550100@example.com>", "US"),
            ("  +1 415 555 0100  ", "US"),
        ];
        for (raw, country) in cases {
            assert_eq!(
                normalize_e164(raw, country).as_deref(),
                Some("+14155550100"),
                "{raw} / {country}"
            );
        }
        assert_eq!(
            normalize_e164("020 7946 0000", "GB").as_deref(),
            Some("+442079460000")
        );
        // International numbers keep their own country's rules whatever the
        // default country: no US "1" or UK "0" prefix is stripped from them.
        let international = [
            ("+44 1632 960000", "US", "+441632960000"),
            ("+44 20 7946 0000", "US", "+442079460000"),
            ("+44 (0)20 7946 0000", "US", "+442079460000"),
            ("+39 06 1234 5678", "GB", "+390612345678"),
            ("+39 06 1234 5678", "US", "+390612345678"),
            ("011 44 1632 960000", "US", "+441632960000"),
            ("011 39 06 1234 5678", "US", "+390612345678"),
            ("00 39 06 1234 5678", "GB", "+390612345678"),
            ("00 1 415 555 0100", "DE", "+14155550100"),
            ("06 1234 5678", "IT", "+390612345678"),
            ("01632 960000", "GB", "+441632960000"),
            ("030 123456", "DE", "+4930123456"),
        ];
        for (raw, country, want) in international {
            assert_eq!(
                normalize_e164(raw, country).as_deref(),
                Some(want),
                "{raw} / {country}"
            );
        }
    }

    #[test]
    fn normalize_e164_rejects() {
        for raw in [
            "alice",
            "",
            "   ",
            "+",
            "sip:alice@example.com",
            "tel:",
            "1-800-FLOWERS",
            "4155550100x12",
            "41555501+00",
            "++14155550100",
            "911",
            "12",
            "+1415555010012345678",
            "4155550100;ext=1",
            "123456789012345678901234567890",
            "<sip:alice@h",
        ] {
            assert_eq!(normalize_e164(raw, "US"), None, "{raw:?}");
        }
        // National number without a usable default country.
        assert_eq!(normalize_e164("4155550100", "ZZ"), None);
        assert_eq!(normalize_e164("4155550100", ""), None);
    }

    // ---- body framing ------------------------------------------------------

    const BODY: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";

    fn raw(headers: &str, body: &str) -> Vec<u8> {
        format!("INVITE sip:s@h SIP/2.0\r\nCall-ID: b\r\n{headers}\r\n{body}").into_bytes()
    }

    #[test]
    fn content_length_shorter_than_datagram_cuts_body() {
        // Trailing junk past Content-Length would break SDP if read.
        let m = raw(
            &format!(
                "Content-Type: application/sdp\r\nContent-Length: {}\r\n",
                BODY.len()
            ),
            &format!("{BODY}zzz junk"),
        );
        let r = request(&m);
        assert_eq!(r.sdp_error, None);
        assert_eq!(r.sdp.map(|s| s.media.len()), Some(1));
    }

    #[test]
    fn content_length_longer_than_datagram_is_truncated() {
        let m = raw(
            &format!("Content-Type: application/sdp\r\nl: {}\r\n", BODY.len() + 1),
            BODY,
        );
        assert_eq!(
            parse(&m, "US"),
            Err(SipError::Truncated(format!(
                "Content-Length {} but {} body bytes",
                BODY.len() + 1,
                BODY.len()
            )))
        );
    }

    #[test]
    fn content_length_not_a_number_is_malformed() {
        let m = raw("Content-Length: ten\r\n", "");
        assert_eq!(
            parse(&m, "US"),
            Err(SipError::Malformed("Content-Length is not a number".into()))
        );
    }

    #[test]
    fn no_content_length_uses_rest_of_datagram() {
        let m = raw("Content-Type: application/sdp\r\n", BODY);
        assert_eq!(
            request(&m).sdp.map(|s| s.media_endpoints()),
            Some(vec![(v4(10, 0, 0, 1), 4000)])
        );
    }

    #[test]
    fn sdp_read_only_for_sdp_content_type() {
        // No Content-Type, body starts with v=0: SDP.
        assert!(request(&raw("", BODY)).sdp.is_some());
        // Parameters and case in the media type.
        let m = raw("Content-Type: Application/SDP; charset=utf-8\r\n", BODY);
        assert!(request(&m).sdp.is_some());
        // Another content type: not SDP, not an error.
        let r = request(&raw("Content-Type: text/plain\r\n", BODY));
        assert_eq!((r.sdp, r.sdp_error), (None, None));
        // No Content-Type and a body that is not SDP.
        let r = request(&raw("", "hello"));
        assert_eq!((r.sdp, r.sdp_error), (None, None));
        // Declared SDP but empty body (e.g. a late-offer INVITE).
        let r = request(&raw(
            "Content-Type: application/sdp\r\nContent-Length: 0\r\n",
            "",
        ));
        assert_eq!((r.sdp, r.sdp_error), (None, None));
    }

    #[test]
    fn malformed_sdp_body_keeps_the_message() {
        let m = raw(
            "Content-Type: application/sdp\r\nFrom: <tel:+14155550100>\r\n",
            "v=0\r\nthis is not sdp\r\n",
        );
        let r = request(&m);
        assert_eq!(r.caller.as_deref(), Some("+14155550100"));
        assert_eq!(r.sdp, None);
        assert!(
            matches!(r.sdp_error, Some(SipError::Sdp(_))),
            "{:?}",
            r.sdp_error
        );
    }

    // ---- SDP: hold and media ------------------------------------------------

    fn hold(session: &str, media: &str) -> bool {
        sdp(&format!(
            "{SDP_HEAD}{session}t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n{media}"
        ))
        .is_hold()
    }

    #[test]
    fn hold_by_direction_and_address() {
        let c = "c=IN IP4 10.0.0.1\r\n";
        assert!(!hold(c, ""));
        assert!(!hold(c, "a=sendrecv\r\n"));
        assert!(!hold(c, "a=recvonly\r\n"));
        assert!(hold(c, "a=sendonly\r\n"));
        assert!(hold(c, "a=inactive\r\n"));
        // RFC 2543 style: connection address 0.0.0.0 at session level.
        assert!(hold("c=IN IP4 0.0.0.0\r\n", ""));
        assert!(hold("c=IN IP4 0.0.0.0\r\n", "a=sendrecv\r\n"));
        // ... or at media level.
        assert!(hold(c, "c=IN IP4 0.0.0.0\r\n"));
        assert!(hold("c=IN IP6 ::\r\n", ""));
    }

    #[test]
    fn media_level_overrides_session_level() {
        let c = "c=IN IP4 10.0.0.1\r\n";
        // Session-level attribute applies when the media has none.
        let s = sdp(&format!(
            "{SDP_HEAD}{c}t=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\n"
        ));
        assert_eq!(s.direction, Some(Direction::SendOnly));
        assert_eq!(s.media[0].direction, None);
        assert!(s.is_hold());
        let s = sdp(&format!(
            "{SDP_HEAD}{c}t=0 0\r\na=inactive\r\nm=audio 4000 RTP/AVP 0\r\n"
        ));
        assert!(s.is_hold());
        // Media-level sendrecv beats session-level sendonly.
        let s = sdp(&format!(
            "{SDP_HEAD}{c}t=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"
        ));
        assert_eq!(
            (s.direction, s.media[0].direction, s.is_hold()),
            (Some(Direction::SendOnly), Some(Direction::SendRecv), false)
        );
        // Media-level sendonly beats session-level sendrecv.
        let s = sdp(&format!(
            "{SDP_HEAD}{c}t=0 0\r\na=sendrecv\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"
        ));
        assert!(s.is_hold());
        // A media-level address beats a session-level 0.0.0.0.
        let s = sdp(&format!(
            "{SDP_HEAD}c=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 10.0.0.9\r\n"
        ));
        assert_eq!(
            (s.connection, s.media[0].connection, s.is_hold()),
            (Some(v4(0, 0, 0, 0)), Some(v4(10, 0, 0, 9)), false)
        );
        assert_eq!(s.media_endpoints(), vec![(v4(10, 0, 0, 9), 4000)]);
    }

    #[test]
    fn hold_cause_names_what_meant_hold() {
        let c = "c=IN IP4 10.0.0.1\r\n";
        let of = |session: &str, media: &str| {
            sdp(&format!(
                "{SDP_HEAD}{session}t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n{media}"
            ))
            .hold_cause()
            .map(|h| h.to_string())
        };
        assert_eq!(of(c, "a=sendonly\r\n").as_deref(), Some("sendonly"));
        assert_eq!(of(c, "a=inactive\r\n").as_deref(), Some("inactive"));
        assert_eq!(of("c=IN IP4 0.0.0.0\r\n", "").as_deref(), Some("c=0.0.0.0"));
        // A direction that means hold is named before the address.
        assert_eq!(
            of("c=IN IP4 0.0.0.0\r\n", "a=inactive\r\n").as_deref(),
            Some("inactive")
        );
        assert_eq!(of(c, "a=sendrecv\r\n"), None);
        assert_eq!(of(c, ""), None);
        // Session-level sendonly, media-level sendrecv: the media wins.
        let s = sdp(&format!(
            "{SDP_HEAD}{c}t=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"
        ));
        assert_eq!(s.hold_cause(), None);
        // Several m= lines: the audio one decides even when it comes second.
        let s = sdp(&format!(
            "{SDP_HEAD}{c}t=0 0\r\nm=video 5000 RTP/AVP 96\r\na=sendrecv\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\nm=audio 4002 RTP/AVP 0\r\na=sendrecv\r\n"
        ));
        assert_eq!(
            s.hold_cause().map(|h| h.to_string()).as_deref(),
            Some("inactive")
        );
    }

    #[test]
    fn reinvite_with_malformed_sdp_reports_no_hold_and_the_error() {
        // The control plane leaves the hold state alone when a re-INVITE's
        // SDP cannot be read: the parser gives it no SDP and the reason.
        let body = "v=0\r\no=broken\r\nm=audio notaport RTP/AVP 0\r\na=sendonly\r\n";
        let r = request(&invite(&["Content-Type: application/sdp"], body));
        assert_eq!(r.method, "INVITE");
        assert!(r.sdp.is_none());
        assert!(
            matches!(r.sdp_error, Some(SipError::Sdp(_))),
            "{:?}",
            r.sdp_error
        );
    }

    #[test]
    fn hold_looks_at_first_audio_stream() {
        // Video first and on hold, audio active: not hold.
        let s = sdp(&format!(
            "{SDP_HEAD}c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\na=inactive\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n"
        ));
        assert!(!s.is_hold());
        // Audio held, video active: hold.
        let s = sdp(&format!(
            "{SDP_HEAD}c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n"
        ));
        assert!(s.is_hold());
        // No media at all: session level decides.
        let s = sdp(&format!(
            "{SDP_HEAD}c=IN IP4 10.0.0.1\r\nt=0 0\r\na=inactive\r\n"
        ));
        assert_eq!(s.media, vec![]);
        assert!(s.is_hold());
    }

    #[test]
    fn several_media_lines_endpoints_and_rtcp() {
        let s = sdp(&format!(
            "{SDP_HEAD}c=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0 8\r\na=rtcp:4005 IN IP4 10.0.0.1\r\n\
             m=video 0 RTP/AVP 96\r\n\
             m=video 5000 RTP/SAVPF 96\r\nc=IN IP6 2001:db8::7\r\na=rtcp-mux\r\n\
             m=application 5070 UDP/BFCP *\r\n\
             m=audio 6000/2 RTP/AVP 0\r\nc=IN IP4 224.2.1.1/127\r\n"
        ));
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));
        assert_eq!(
            s.media,
            vec![
                Media {
                    rtcp_port: Some(4005),
                    codec: codec(0, "PCMU", 8000, 1),
                    ..audio(4000, "RTP/AVP")
                },
                Media {
                    kind: "video".into(),
                    ..audio(0, "RTP/AVP")
                },
                Media {
                    kind: "video".into(),
                    connection: Some(v6),
                    rtcp_mux: true,
                    ..audio(5000, "RTP/SAVPF")
                },
                Media {
                    kind: "application".into(),
                    ..audio(5070, "UDP/BFCP")
                },
                Media {
                    connection: Some(v4(224, 2, 1, 1)),
                    codec: codec(0, "PCMU", 8000, 1),
                    ..audio(6000, "RTP/AVP")
                },
            ]
        );
        assert_eq!(
            s.media_endpoints(),
            vec![
                (v4(10, 0, 0, 1), 4000),
                (v6, 5000),
                (v4(10, 0, 0, 1), 5070),
                (v4(224, 2, 1, 1), 6000),
            ]
        );
        let rtcp: Vec<_> = s.media.iter().map(Media::effective_rtcp_port).collect();
        assert_eq!(
            rtcp,
            vec![Some(4005), None, Some(5000), Some(5071), Some(6001)]
        );
    }

    #[test]
    fn media_without_known_address() {
        // No c= anywhere, and a host name (RFC 4566 allows one): no endpoint.
        let s = sdp(&format!("{SDP_HEAD}t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"));
        assert_eq!((s.connection, s.media_endpoints()), (None, vec![]));
        let s = sdp(&format!(
            "{SDP_HEAD}c=IN IP4 media.example.com\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        ));
        assert_eq!((s.connection, s.media_endpoints()), (None, vec![]));
        assert!(!s.is_hold());
    }

    #[test]
    fn rtcp_port_edge_cases() {
        let mut m = audio(65535, "RTP/AVP");
        assert_eq!(m.effective_rtcp_port(), None);
        m.rtcp_port = Some(1000);
        assert_eq!(m.effective_rtcp_port(), Some(1000));
        m.port = 0;
        assert_eq!(m.effective_rtcp_port(), None);
        // An a=rtcp: that is not a port is ignored.
        let s = sdp(&format!(
            "{SDP_HEAD}c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:abc\r\n"
        ));
        assert_eq!(
            (s.media[0].rtcp_port, s.media[0].effective_rtcp_port()),
            (None, Some(4001))
        );
    }

    /// Found by the `sdp` fuzz target (controller/fuzz/README.md): `a=rtcp:0`
    /// (or `00`) gave RTCP port 0, and the call's media leg would have
    /// matched UDP port 0 while its real RTCP ran untiered. Port 0 is no
    /// port: it is ignored like any unreadable `a=rtcp:`.
    #[test]
    fn rtcp_port_zero_is_ignored() {
        for attr in [
            "a=rtcp:0",
            "a=rtcp:00 IN IP4 10.0.0.1",
            "a=rtcp:0 useinband",
        ] {
            let s = sdp(&format!(
                "{SDP_HEAD}c=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 7078 RTP/AVP 0\r\n{attr}\r\n"
            ));
            assert_eq!(
                (s.media[0].rtcp_port, s.media[0].effective_rtcp_port()),
                (None, Some(7079)),
                "{attr}"
            );
        }
    }

    #[test]
    fn bare_lf_sdp() {
        let s = sdp(
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 4000 RTP/AVP 0\na=sendonly\n",
        );
        assert!(s.is_hold());
        assert_eq!(s.media_endpoints(), vec![(v4(10, 0, 0, 1), 4000)]);
    }

    #[test]
    fn malformed_sdp_is_an_error() {
        let cases: &[&[u8]] = &[
            b"",
            b"\r\n",
            b"hello",
            b"o=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\n",
            b"v=0\r\n",
            b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nthis is junk\r\n",
            b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n",
            b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000\r\n",
            b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio x RTP/AVP 0\r\n",
            b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=XX IP4 10.0.0.1\r\nt=0 0\r\n",
            b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n\xff\xfe\r\n",
        ];
        for body in cases {
            assert!(
                matches!(Sdp::parse(body), Err(SipError::Sdp(_))),
                "{:?} -> {:?}",
                String::from_utf8_lossy(body),
                Sdp::parse(body)
            );
        }
    }

    // ---- inputs that are not (whole) SIP ------------------------------------

    #[test]
    fn not_sip() {
        let cases: &[&[u8]] = &[
            b"",
            b"\r\n\r\n",
            b"\n",
            b"hello",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"SIP/2.0 abc OK\r\n\r\n",
            b"SIP/2.0 99 Low\r\n\r\n",
            b"SIP/2.0 700 High\r\n\r\n",
            b"SIP/2.0 2000 OK\r\n\r\n",
            b"SIP/3.0 200 OK\r\n\r\n",
            b"INVITE sip:a@b SIP/3.0\r\n\r\n",
            b"INVITE  sip:a@b SIP/2.0\r\n\r\n",
            b"INVITE sip:a@b\r\n\r\n",
            b"INVITE sip:a@b SIP/2.0 extra\r\n\r\n",
            b"IN(VITE sip:a@b SIP/2.0\r\n\r\n",
            b"INVITE nocolon SIP/2.0\r\n\r\n",
            b"\x00\x01\x02\x03\xff\xfe\xfd",
            b"\x80\x00\x12\x34\x00\x00\x00\x01\xde\xad\xbe\xef", // an RTP header
            b"\xe9\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00", // DNS
            "INVITÉ sip:a@b SIP/2.0\r\n\r\n".as_bytes(),
        ];
        for payload in cases {
            assert!(
                matches!(parse(payload, "US"), Err(SipError::NotSip(_))),
                "{:?} -> {:?}",
                String::from_utf8_lossy(payload),
                parse(payload, "US")
            );
        }
    }

    #[test]
    fn error_messages_are_readable() {
        assert_eq!(
            parse(b"hello", "US").map_err(|e| e.to_string()),
            Err("not a SIP message: no SIP request or status line".to_string())
        );
        assert_eq!(
            parse(b"INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\n", "US").map_err(|e| e.to_string()),
            Err("truncated SIP message: no blank line after the headers".to_string())
        );
        assert_eq!(
            Sdp::parse(b"hello").map_err(|e| e.to_string()),
            Err("malformed SDP: does not start with v=".to_string())
        );
    }

    #[test]
    fn every_truncation_of_every_fixture_fails_cleanly() {
        for fixture in FIXTURES {
            let start_line_end = fixture
                .iter()
                .position(|b| *b == b'\n')
                .expect("fixture has lines");
            let start_line_len = if fixture[start_line_end - 1] == b'\r' {
                start_line_end - 1
            } else {
                start_line_end
            };
            // A status line is whole once its code is ("SIP/2.0 200"): the
            // reason phrase may be empty.
            let whole_from = if fixture.starts_with(b"SIP/2.0 ") {
                "SIP/2.0 200".len()
            } else {
                start_line_len
            };
            for cut in 0..fixture.len() {
                let got = parse(&fixture[..cut], "US");
                if cut < whole_from {
                    assert!(
                        matches!(got, Err(SipError::NotSip(_))),
                        "cut {cut}: {got:?}"
                    );
                } else {
                    assert!(
                        matches!(got, Err(SipError::Truncated(_))),
                        "cut {cut}: {got:?}"
                    );
                }
            }
            assert!(parse(fixture, "US").is_ok());
        }
    }

    // ---- no panic on any input ---------------------------------------------

    /// Applies byte edits (overwrite, insert, delete) to a fixture.
    fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
        let mut v = base.to_vec();
        for &(at, op, byte) in edits {
            if v.is_empty() {
                v.push(byte);
                continue;
            }
            let at = at % v.len();
            match op % 3 {
                0 => v[at] = byte,
                1 => v.insert(at, byte),
                _ => {
                    v.remove(at);
                }
            }
        }
        v
    }

    /// Bytes that matter to the parsers, to make mutations hit structure.
    fn interesting_byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            any::<u8>(),
            prop::sample::select(b"\r\n :;<>\"=,+-/0123456789@vcmatl%\t".to_vec()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn parse_never_panics_on_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1500)) {
            let _ = parse(&bytes, "US");
            let _ = Sdp::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_mutated_fixtures(
            which in 0..FIXTURES.len(),
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), interesting_byte()), 1..12),
        ) {
            let m = mutate(FIXTURES[which], &edits);
            if let Ok(msg) = parse(&m, "US")
                && let Some(s) = msg.sdp()
            {
                let _ = (s.is_hold(), s.media_endpoints());
                for media in &s.media {
                    let _ = media.effective_rtcp_port();
                }
            }
        }

        #[test]
        fn sdp_never_panics_on_mutated_bodies(
            edits in prop::collection::vec((any::<usize>(), any::<u8>(), interesting_byte()), 1..12),
        ) {
            let body = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001\r\nm=video 5000/2 RTP/SAVPF 96\r\nc=IN IP6 ::1\r\na=inactive\r\n";
            let m = mutate(body.as_bytes(), &edits);
            if let Ok(s) = Sdp::parse(&m) {
                let _ = (s.is_hold(), s.media_endpoints());
            }
        }

    }

    proptest! {
        // libphonenumber's regexes are slow in debug builds.
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn normalize_never_panics(raw in ".{0,40}", country in "[A-Za-z]{0,3}") {
            let _ = normalize_e164(&raw, &country);
        }

        #[test]
        fn normalize_output_is_e164(
            raw in "[+]?[0-9 ().-]{0,24}",
            country in prop::sample::select(vec!["US", "GB", "DE", "FR", "IN", "BR", "JP", "CH", "IT", "AU", "ZZ", ""]),
        ) {
            if let Some(n) = normalize_e164(&raw, country) {
                prop_assert!(n.starts_with('+'), "{n}");
                prop_assert!(n.len() <= 16, "{n}");
                prop_assert!(n[1..].bytes().all(|b| b.is_ascii_digit()), "{n}");
                // Normalising an E.164 number again is the identity.
                prop_assert_eq!(normalize_e164(&n, "ZZ"), Some(n.clone()));
            }
        }
    }
}
