//! Voice calls: SIP signalling relayed by the controller (the signalling
//! flows send it here, above the tier flows), an INVITE as a session
//! request scored on the caller's number and promotion code, BYE and
//! CANCEL ending the call, hold and resume from re-INVITE/UPDATE SDP, and
//! media legs for media that runs between other addresses than the call's
//! own.

use super::admit::{Admission, SessionPacket};
use super::program;
use super::record::{
    Inputs, MediaLeg, SdpSaid, SessionId, SipRequestKind, Source, StateReason, Streams,
};
use super::{HoldCause, Sessions, detect};
use crate::codec;
use crate::messages::SessionKey;
use crate::plan::{Execute, Plan, Release};
use crate::qos::Keeps;
use crate::sip::{self, SipMessage};
use crate::topology::Topology;
use openflow::PortNo;
use parking_lot::Mutex;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use tierflow_api::model::SessionState;
use tracing::{debug, info, warn};

/// Most media legs one call gets (re-INVITEs may move its media).
const MAX_LEGS: usize = 4;
/// Most media endpoints remembered per call.
const MAX_MEDIA: usize = 8;

impl Sessions {
    /// SIP signalling to or from a SIP service.
    pub(super) fn sip_packet(
        &self,
        exec: &dyn Execute,
        topo: &Mutex<Topology>,
        pkt: &SessionPacket<'_>,
        svc: &detect::Svc,
        to_server: bool,
        key: SessionKey,
    ) -> Admission {
        let Some(ip) = pkt.frame.ip4.as_ref() else {
            return Admission::NotSession;
        };
        let msg = match sip::parse(ip.payload, &self.default_country) {
            Ok(m) => Some(m),
            Err(e) => {
                self.stats.sip_unparsed.inc();
                debug!(
                    "SIP datagram {}:{} -> {}:{} not parsed: {e}",
                    ip.src, ip.sport, ip.dst, ip.dport
                );
                None
            }
        };
        if let Some(SipMessage::Response(resp)) = &msg
            && !pkt.on_link
            && (200..300).contains(&resp.status)
            && let Some(sdp) = &resp.sdp
        {
            // The answer to an INVITE or UPDATE: the other side's media.
            self.learn_media(exec, topo, &key, sdp, resp.call_id.as_deref(), true);
        }
        if let Some(SipMessage::Request(r)) = &msg {
            let live = self.table.lock().by_key.get(&key).copied();
            match r.method.as_str() {
                // A re-INVITE or UPDATE on a live call, from either side
                // (an agent holds as often as a caller does); an INVITE
                // with a Call-ID the session does not carry yet is another
                // call between the same two addresses: it rides the same
                // flows, and its own BYE ends only it.
                "INVITE" | "UPDATE" if !pkt.on_link && live.is_some() => {
                    if r.method == "INVITE"
                        && to_server
                        && self.add_call(&key, r.call_id.as_deref())
                    {
                        // A new call: its SDP says nothing about this one's hold.
                    } else {
                        self.sip_offer(exec, topo, &key, r, to_server);
                    }
                }
                "INVITE" if to_server && !pkt.on_link => {
                    if let Some(sdp) = &r.sdp {
                        self.table.lock().remember_offer(
                            key,
                            (r.call_id.as_deref().map(Box::from), Box::new(sdp.clone())),
                        );
                    }
                    if live.is_none()
                        && let Some(at) = pkt.dst_at
                    {
                        let inputs = Inputs {
                            ip: Some(IpAddr::V4(ip.src)),
                            mac: Some(pkt.frame.src),
                            phone: r.caller.as_deref().map(Box::from),
                            promo_code: r
                                .promo_code
                                .as_deref()
                                .filter(|c| !c.is_empty())
                                .map(Box::from),
                            account_id: None,
                            source: Some(Source::Sip),
                        };
                        let ask = super::admit::Ask {
                            key,
                            svc,
                            inputs,
                            relay_to: Some(at),
                            call_id: r.call_id.as_deref(),
                        };
                        match self.request(exec, pkt, ask) {
                            Admission::NotSession => {}
                            done => {
                                self.stats.sip_relayed.inc();
                                return done;
                            }
                        }
                    }
                }
                "BYE" | "CANCEL" => {
                    if let Some(id) = live
                        && self.call_ended(id, r.call_id.as_deref())
                    {
                        self.end(exec, id, &format!("SIP {}", r.method));
                    }
                }
                _ => {}
            }
        }
        self.relay(exec, pkt)
    }

    /// Records another call between a live session's two addresses. True
    /// if `call_id` is a call the session did not carry yet.
    fn add_call(&self, key: &SessionKey, call_id: Option<&str>) -> bool {
        let Some(call_id) = call_id else {
            return false;
        };
        let mut t = self.table.lock();
        let Some(r) = t.by_key.get(key).copied().and_then(|id| t.live_mut(id)) else {
            return false;
        };
        let call = r.call.get_or_insert_with(Default::default);
        if call.call_ids.is_empty() || call.call_ids.iter().any(|c| &**c == call_id) {
            return false;
        }
        if call.call_ids.len() < super::record::MAX_CALLS {
            call.call_ids.push(call_id.into());
        }
        true
    }

    /// A BYE or CANCEL for `call_id` on a live session: true when it ends
    /// the session's last call (the session ends with it). A Call-ID the
    /// session does not carry ends nothing (a stray or spoofed BYE).
    fn call_ended(&self, id: SessionId, call_id: Option<&str>) -> bool {
        let mut t = self.table.lock();
        let Some(r) = t.live_mut(id) else {
            return false;
        };
        let Some(call) = r.call.as_mut().filter(|c| !c.call_ids.is_empty()) else {
            // Carried calls unknown (remembered from before a restart).
            return true;
        };
        let Some(i) = call_id.and_then(|c| call.call_ids.iter().position(|x| &**x == c)) else {
            self.stats.sip_bye_ignored.inc();
            return false;
        };
        call.call_ids.remove(i);
        call.call_ids.is_empty()
    }

    /// Delivers a frame to the edge port its destination attaches to, or
    /// asks for a flood when the destination is not known yet.
    fn relay(&self, exec: &dyn Execute, pkt: &SessionPacket<'_>) -> Admission {
        self.stats.sip_relayed.inc();
        let Some((dpid, port)) = pkt.dst_at else {
            return Admission::Flood;
        };
        let mut plan = Plan::new();
        plan.packet_out(Release {
            dpid,
            in_port: if dpid == pkt.dpid {
                pkt.in_port
            } else {
                PortNo::Controller.value()
            },
            out_port: port,
            data: pkt.delivered.clone(),
        });
        exec.execute(&mut plan);
        Admission::Done
    }

    /// An SDP offer in a re-INVITE or UPDATE on a live call: `sendonly`,
    /// `inactive` or `c=0.0.0.0` puts it on hold; `sendrecv` (or no
    /// direction) resumes a hold that SIP or idle media set. A hold set
    /// through CTI is left to CTI to end: a session-refresh re-INVITE
    /// repeats the call's `sendrecv` SDP and must not undo it. An offer
    /// whose SDP cannot be read changes nothing.
    fn sip_offer(
        &self,
        exec: &dyn Execute,
        topo: &Mutex<Topology>,
        key: &SessionKey,
        r: &sip::SipRequest,
        to_server: bool,
    ) {
        let Some(id) = self.table.lock().by_key.get(key).copied() else {
            return;
        };
        let side = if to_server { "caller" } else { "callee" };
        let (what, kind) = if r.method == "INVITE" {
            ("re-INVITE", SipRequestKind::ReInvite)
        } else {
            ("UPDATE", SipRequestKind::Update)
        };
        if let Some(e) = &r.sdp_error {
            warn!(
                "session {id}: SIP {what} from the {side} with unreadable SDP, hold state unchanged: {e}"
            );
            return;
        }
        let Some(sdp) = &r.sdp else {
            // No offer (a refresh, or an offer to come in the ACK).
            return;
        };
        self.learn_media(exec, topo, key, sdp, r.call_id.as_deref(), false);
        let (state, by) = {
            let t = self.table.lock();
            match t.live(id) {
                Some(rec) => (rec.state, rec.hold.by),
                None => return,
            }
        };
        let result = match sdp.hold_cause() {
            Some(c) => self.set_hold_keeping(
                exec,
                id,
                true,
                HoldCause::Sip,
                StateReason::Sip(kind, SdpSaid::from_hold(c)),
                keeps_on_hold(c, to_server),
            ),
            None if state == SessionState::Hold && by != Some(HoldCause::Cti) => self.set_hold(
                exec,
                id,
                false,
                HoldCause::Sip,
                StateReason::Sip(kind, SdpSaid::SendRecv),
            ),
            None => return,
        };
        if let Err(e) = result {
            warn!("session {id}: SIP {what} not applied: {e}");
        }
    }

    /// Records a call's media endpoints from an SDP offer or answer, and
    /// once an answer pairs with its offer, gives the media streams that
    /// run between other addresses than the call's own their flows.
    ///
    /// Media between the caller's and the server's own addresses (the
    /// usual case: the phone and the agent's endpoint send RTP from the
    /// addresses they signal from) is carried by the call's IP-pair tier
    /// flows already, whatever the ports, so nothing more is installed for
    /// it. Media to a third address (a media gateway, an agent's phone
    /// behind the SIP server) gets a media leg: flows for its RTP and RTCP
    /// ports and a meter per direction on every switch between the two
    /// endpoints, at the call's tier and state.
    fn learn_media(
        &self,
        exec: &dyn Execute,
        topo: &Mutex<Topology>,
        key: &SessionKey,
        sdp: &sip::Sdp,
        call_id: Option<&str>,
        answer: bool,
    ) {
        let eps = super::record::endpoints_v4(sdp);
        let snap = self.snapshot();
        let (id, offer) = {
            let mut t = self.table.lock();
            let Some(id) = t.by_key.get(key).copied() else {
                return;
            };
            let Some(rec) = t.live_mut(id) else {
                return;
            };
            let call = rec.call.get_or_insert_with(Default::default);
            for ep in eps {
                // 0.0.0.0 is the old way of saying hold, not an endpoint.
                if call.media.contains(&ep) || ep.ip().is_unspecified() {
                    continue;
                }
                debug!("session {id}: media endpoint {ep}");
                if call.media.len() < MAX_MEDIA {
                    call.media.push(ep);
                }
            }
            if let Some(need) = codec::need(sdp)
                && call.need != Some(need)
            {
                call.need = Some(need);
                let on_hold_one_way = call.keeps != Keeps::Neither;
                let tier = snap.tier(&self.names.get(rec.tier)).cloned();
                if let Some(tier) = &tier {
                    self.count_codec_warnings(id, tier, need);
                }
                // Music on hold runs at the codec's rate: a new codec
                // moves it.
                if on_hold_one_way
                    && rec.state == SessionState::Hold
                    && let Some(tier) = tier
                {
                    exec.execute(&mut program::retier(rec, &tier, self.idle_timeout));
                }
            }
            let Some(call) = rec.call.as_mut() else {
                return;
            };
            if !answer {
                call.offer = Some((call_id.map(Box::from), Box::new(sdp.clone())));
                return;
            }
            // The answer to this call's offer (the caller and the server
            // may have other calls between them).
            if call
                .offer
                .as_ref()
                .is_none_or(|o| o.0.as_deref() != call_id)
            {
                return;
            }
            let Some((_, offer)) = call.offer.take() else {
                return;
            };
            (id, offer)
        };
        for streams in uncovered_streams(key, &offer, sdp) {
            self.add_leg(exec, topo, id, key, streams);
        }
    }

    /// Gives a call a media leg for `streams` on the current shortest path
    /// between their endpoints (unless it has it already). Reads the
    /// topology for where the endpoints attach (a media leg is set up by a
    /// SIP answer, not by the packet-in that carried it), before the table.
    pub(super) fn add_leg(
        &self,
        exec: &dyn Execute,
        topo: &Mutex<Topology>,
        id: SessionId,
        key: &SessionKey,
        streams: Streams,
    ) {
        let Some(&(a, z)) = streams.first() else {
            return;
        };
        {
            let topo = topo.lock();
            let at = |topo: &Topology, ip: Ipv4Addr| topo.host_by_ip(IpAddr::V4(ip)).map(|h| h.at);
            let ends = (at(&topo, *a.ip()), at(&topo, *z.ip()));
            if ends.0.is_none() || ends.1.is_none() {
                info!(
                    "{id}: media {a} <-> {z} not tiered: where {} attaches is not known yet",
                    if ends.0.is_none() { a.ip() } else { z.ip() }
                );
                return;
            }
        }
        let Some((route, carry)) = super::request::locate_ips(topo, &self.net(), *a.ip(), *z.ip())
        else {
            info!("{id}: media {a} <-> {z} not tiered: no path");
            return;
        };
        let snap = self.snapshot();
        let mut t = self.table.lock();
        let Some(rec) = t.live_mut(id).filter(|r| r.key == *key) else {
            return;
        };
        if rec.legs().len() >= MAX_LEGS || rec.legs().iter().any(|g| g.streams == streams) {
            return;
        }
        let Some(tier) = snap.tier(&self.names.get(rec.tier)).cloned() else {
            return;
        };
        let Some(hops) = self.hops_with_meters(&route) else {
            self.stats.sessions_refused_meters.inc();
            warn!("{id}: media {a} <-> {z} not tiered: no meter left on its path");
            return;
        };
        let leg = MediaLeg {
            streams,
            hops,
            carry,
        };
        exec.execute(&mut program::install_leg(
            rec,
            &leg,
            &tier,
            self.idle_timeout,
        ));
        info!(
            "session {id}: media leg {a} <-> {z} on {} switches, tier {}",
            leg.hops.len(),
            tier.name
        );
        rec.call.get_or_insert_with(Default::default).legs.push(leg);
    }
}

/// Which way a call held by `said` still carries media: the side that
/// sent `a=sendonly` (the caller when the offer went `to_server`) plays
/// music on hold to the other; `a=inactive` and `c=0.0.0.0` hold both.
pub fn keeps_on_hold(said: sip::HoldSaid, to_server: bool) -> Keeps {
    match (said, to_server) {
        (sip::HoldSaid::SendOnly, true) | (sip::HoldSaid::RecvOnly, false) => Keeps::ToServer,
        (sip::HoldSaid::SendOnly, false) | (sip::HoldSaid::RecvOnly, true) => Keeps::ToClient,
        (sip::HoldSaid::Inactive | sip::HoldSaid::NullAddress, _) => Keeps::Neither,
    }
}

/// The media streams an SDP offer and its answer set up (m= lines pair up
/// in order, RFC 3264 §6) that the call's IP-pair flows do not carry:
/// one entry per m= line pair, RTP first, then RTCP when it has ports of
/// its own; the caller's side first in each stream.
pub fn uncovered_streams(key: &SessionKey, offer: &sip::Sdp, answer: &sip::Sdp) -> Vec<Streams> {
    let mut out = Vec::new();
    for (o, a) in offer.media.iter().zip(&answer.media) {
        if o.port == 0 || a.port == 0 {
            continue;
        }
        let (Some(IpAddr::V4(oi)), Some(IpAddr::V4(ai))) = (
            o.connection.or(offer.connection),
            a.connection.or(answer.connection),
        ) else {
            continue;
        };
        if oi.is_unspecified() || ai.is_unspecified() || oi == ai {
            continue;
        }
        if (oi == key.client && ai == key.server) || (oi == key.server && ai == key.client) {
            continue;
        }
        let (x, y) = if ai == key.client { (a, o) } else { (o, a) };
        let (xi, yi) = if ai == key.client { (ai, oi) } else { (oi, ai) };
        let mut streams = Streams::new();
        streams.push((SocketAddrV4::new(xi, x.port), SocketAddrV4::new(yi, y.port)));
        if let (Some(xr), Some(yr)) = (x.effective_rtcp_port(), y.effective_rtcp_port())
            && (xr, yr) != (x.port, y.port)
        {
            streams.push((SocketAddrV4::new(xi, xr), SocketAddrV4::new(yi, yr)));
        }
        out.push(streams);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(addr: &str, ports: &[(u16, &str)]) -> sip::Sdp {
        let mut text =
            format!("v=0\r\no=- 1 1 IN IP4 {addr}\r\ns=-\r\nc=IN IP4 {addr}\r\nt=0 0\r\n");
        for (port, extra) in ports {
            text.push_str(&format!("m=audio {port} RTP/AVP 0\r\n{extra}"));
        }
        sip::Sdp::parse(text.as_bytes()).expect("test SDP parses")
    }

    fn ep(s: &str) -> SocketAddrV4 {
        s.parse().expect("endpoint")
    }

    const KEY: SessionKey = SessionKey {
        client: Ipv4Addr::new(10, 0, 0, 1),
        server: Ipv4Addr::new(10, 0, 0, 100),
        l4: None,
        client_port: None,
    };

    #[test]
    fn media_between_caller_and_server_needs_no_leg() {
        let offer = sdp("10.0.0.1", &[(6000, "")]);
        let answer = sdp("10.0.0.100", &[(7000, "")]);
        assert!(uncovered_streams(&KEY, &offer, &answer).is_empty());
        // Offered by the server side (an agent's re-INVITE): still covered.
        assert!(uncovered_streams(&KEY, &answer, &offer).is_empty());
    }

    #[test]
    fn media_to_a_third_address_gets_rtp_and_rtcp_streams_caller_first() {
        let offer = sdp("10.0.0.1", &[(6000, "")]);
        let answer = sdp("10.0.0.200", &[(7000, "")]);
        let want: Vec<Streams> = vec![
            [
                (ep("10.0.0.1:6000"), ep("10.0.0.200:7000")),
                (ep("10.0.0.1:6001"), ep("10.0.0.200:7001")),
            ]
            .into_iter()
            .collect(),
        ];
        assert_eq!(uncovered_streams(&KEY, &offer, &answer), want);
        // The far side offered (a re-INVITE from the agent's phone): the
        // caller's endpoint still comes first.
        assert_eq!(uncovered_streams(&KEY, &answer, &offer), want);
        // rtcp-mux: one stream; a=rtcp gives the RTCP port.
        let mux = sdp("10.0.0.200", &[(7000, "a=rtcp-mux\r\n")]);
        let offer_mux = sdp("10.0.0.1", &[(6000, "a=rtcp-mux\r\n")]);
        assert_eq!(uncovered_streams(&KEY, &offer_mux, &mux)[0].len(), 1);
        let rtcp = sdp("10.0.0.200", &[(7000, "a=rtcp:7100\r\n")]);
        assert_eq!(
            uncovered_streams(&KEY, &offer, &rtcp)[0].get(1),
            Some(&(ep("10.0.0.1:6001"), ep("10.0.0.200:7100")))
        );
    }

    #[test]
    fn several_m_lines_pair_in_order_and_rejected_or_held_streams_are_skipped() {
        let offer = sdp("10.0.0.1", &[(6000, ""), (6002, ""), (6004, "")]);
        // Second stream rejected (port 0) in the answer.
        let answer = sdp("10.0.0.200", &[(7000, ""), (0, ""), (7004, "")]);
        let got = uncovered_streams(&KEY, &offer, &answer);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1][0], (ep("10.0.0.1:6004"), ep("10.0.0.200:7004")));
        // A hold offer with c=0.0.0.0 sets up no stream.
        let held = sdp("0.0.0.0", &[(6000, "")]);
        assert!(uncovered_streams(&KEY, &held, &answer).is_empty());
        // More m= lines in the offer than in the answer: only the pairs.
        let short = sdp("10.0.0.200", &[(7000, "")]);
        assert_eq!(uncovered_streams(&KEY, &offer, &short).len(), 1);
    }
}
