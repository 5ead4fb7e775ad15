//! MULTIPART_REQUEST and MULTIPART_REPLY (spec 7.3.5): the multipart header
//! and every OpenFlow 1.3 request and reply body, including the table
//! features properties. Experimenter bodies and unknown table features
//! properties are kept raw so they re-encode to the same bytes.

use crate::action::ActionType;
use crate::consts::{GroupType, MultipartType, PortNo};
use crate::enum_with_unknown;
use crate::error::{ErrorKind, PErr, PResult};
use crate::group::{Bucket, buckets_into_owned, buckets_len, parse_buckets};
use crate::instruction::{
    InstructionType, Instructions, emit_instructions, instructions_into_owned, instructions_len,
    parse_instructions,
};
use crate::meter::{MeterBand, bands_len, parse_bands};
use crate::oxm::{Match, OxmId};
use crate::parse::{array, be_u8, be_u16, be_u32, be_u64, bounded, done, many, pad, pad8, take};
use crate::port::Port;
use crate::sink::Sink;
use crate::types::FixedStr;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use std::borrow::Cow;

/// Length of the multipart header that follows the OpenFlow header
/// (`type`, `flags`, `pad[4]`).
pub const MULTIPART_HEADER_LEN: usize = 8;

/// Parses a fixed-layout body that must fill `input` exactly.
fn exact<'a, T>(
    input: &'a [u8],
    f: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> Result<T, nom::Err<PErr>> {
    let (rest, v) = f(input)?;
    done(rest)?;
    Ok(v)
}

fn owned(b: Cow<'_, [u8]>) -> Cow<'static, [u8]> {
    Cow::Owned(b.into_owned())
}

// ---------------------------------------------------------------------------
// Request bodies.

/// `ofp_flow_stats_request`, also used as `ofp_aggregate_stats_request`
/// (same layout).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FlowStatsRequest<'a> {
    pub table_id: u8,
    pub out_port: PortNo,
    pub out_group: u32,
    pub cookie: u64,
    pub cookie_mask: u64,
    #[serde(rename = "match")]
    pub match_: Match<'a>,
}

impl<'a> FlowStatsRequest<'a> {
    pub fn buffer_len(&self) -> usize {
        32 + self.match_.buffer_len()
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u8(self.table_id);
        buf.put_bytes(0, 3);
        buf.put_u32(self.out_port.value());
        buf.put_u32(self.out_group);
        buf.put_bytes(0, 4);
        buf.put_u64(self.cookie);
        buf.put_u64(self.cookie_mask);
        self.match_.emit(buf);
    }

    pub fn parse(b: &'a [u8]) -> PResult<'a, Self> {
        let (b, table_id) = be_u8(b)?;
        let (b, ()) = pad(b, 3)?;
        let (b, out_port) = be_u32(b)?;
        let (b, out_group) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        let (b, cookie) = be_u64(b)?;
        let (b, cookie_mask) = be_u64(b)?;
        let (b, match_) = Match::parse(b)?;
        let req = FlowStatsRequest {
            table_id,
            out_port: out_port.into(),
            out_group,
            cookie,
            cookie_mask,
            match_,
        };
        Ok((b, req))
    }

    pub fn into_owned(self) -> FlowStatsRequest<'static> {
        FlowStatsRequest {
            match_: self.match_.into_owned(),
            ..self
        }
    }
}

/// `ofp_port_stats_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PortStatsRequest {
    /// `ANY` for all ports.
    pub port_no: PortNo,
}

impl PortStatsRequest {
    pub const LEN: usize = 8;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.port_no.value());
        buf.put_bytes(0, 4);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, port_no) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        Ok((
            b,
            PortStatsRequest {
                port_no: port_no.into(),
            },
        ))
    }
}

/// `ofp_queue_stats_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct QueueStatsRequest {
    pub port_no: PortNo,
    /// `OFPQ_ALL` for all queues.
    pub queue_id: u32,
}

impl QueueStatsRequest {
    pub const LEN: usize = 8;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.port_no.value());
        buf.put_u32(self.queue_id);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, port_no) = be_u32(b)?;
        let (b, queue_id) = be_u32(b)?;
        Ok((
            b,
            QueueStatsRequest {
                port_no: port_no.into(),
                queue_id,
            },
        ))
    }
}

/// `ofp_group_stats_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct GroupStatsRequest {
    /// `OFPG_ALL` for all groups.
    pub group_id: u32,
}

impl GroupStatsRequest {
    pub const LEN: usize = 8;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.group_id);
        buf.put_bytes(0, 4);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, group_id) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        Ok((b, GroupStatsRequest { group_id }))
    }
}

/// `ofp_meter_multipart_request`, for both METER and METER_CONFIG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct MeterMultipartRequest {
    /// `OFPM_ALL` for all meters.
    pub meter_id: u32,
}

impl MeterMultipartRequest {
    pub const LEN: usize = 8;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.meter_id);
        buf.put_bytes(0, 4);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, meter_id) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        Ok((b, MeterMultipartRequest { meter_id }))
    }
}

/// `ofp_experimenter_multipart_header` plus the experimenter-defined body,
/// for both requests and replies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ExperimenterMultipart<'a> {
    pub experimenter: u32,
    pub exp_type: u32,
    #[serde(serialize_with = "crate::json::hex")]
    pub data: Cow<'a, [u8]>,
}

impl<'a> ExperimenterMultipart<'a> {
    pub fn buffer_len(&self) -> usize {
        8 + self.data.len()
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.experimenter);
        buf.put_u32(self.exp_type);
        buf.put_slice(&self.data);
    }

    /// Takes all of `b`: the body's layout is the experimenter's.
    pub fn parse(b: &'a [u8]) -> PResult<'a, Self> {
        let (b, experimenter) = be_u32(b)?;
        let (data, exp_type) = be_u32(b)?;
        Ok((
            &[],
            ExperimenterMultipart {
                experimenter,
                exp_type,
                data: Cow::Borrowed(data),
            },
        ))
    }

    pub fn into_owned(self) -> ExperimenterMultipart<'static> {
        ExperimenterMultipart {
            data: owned(self.data),
            ..self
        }
    }
}

// ---------------------------------------------------------------------------
// Reply bodies.

/// `ofp_desc`: 1056 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Desc {
    pub mfr_desc: FixedStr<256>,
    pub hw_desc: FixedStr<256>,
    pub sw_desc: FixedStr<256>,
    pub serial_num: FixedStr<32>,
    pub dp_desc: FixedStr<256>,
}

impl Desc {
    pub const LEN: usize = 1056;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_slice(&self.mfr_desc.0);
        buf.put_slice(&self.hw_desc.0);
        buf.put_slice(&self.sw_desc.0);
        buf.put_slice(&self.serial_num.0);
        buf.put_slice(&self.dp_desc.0);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, mfr_desc) = array::<256>(b)?;
        let (b, hw_desc) = array::<256>(b)?;
        let (b, sw_desc) = array::<256>(b)?;
        let (b, serial_num) = array::<32>(b)?;
        let (b, dp_desc) = array::<256>(b)?;
        let desc = Desc {
            mfr_desc: FixedStr(mfr_desc),
            hw_desc: FixedStr(hw_desc),
            sw_desc: FixedStr(sw_desc),
            serial_num: FixedStr(serial_num),
            dp_desc: FixedStr(dp_desc),
        };
        Ok((b, desc))
    }
}

/// `ofp_flow_stats`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FlowStats<'a> {
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub priority: u16,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    /// `ofp_flow_mod_flags` bits.
    pub flags: u16,
    pub cookie: u64,
    pub packet_count: u64,
    pub byte_count: u64,
    #[serde(rename = "match")]
    pub match_: Match<'a>,
    pub instructions: Instructions<'a>,
}

impl<'a> FlowStats<'a> {
    /// Fixed part before the match.
    const FIXED: usize = 48;

    pub fn buffer_len(&self) -> usize {
        Self::FIXED + self.match_.buffer_len() + instructions_len(&self.instructions)
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        // Lengths above 64 KiB are rejected when the message is encoded.
        buf.put_u16(self.buffer_len() as u16);
        buf.put_u8(self.table_id);
        buf.put_u8(0);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        buf.put_u16(self.priority);
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u16(self.flags);
        buf.put_bytes(0, 4);
        buf.put_u64(self.cookie);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        self.match_.emit(buf);
        emit_instructions(&self.instructions, buf);
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (_, length) = be_u16(input)?;
        // 56 = the fixed part plus the smallest (empty, padded) match.
        let (rest, whole) = bounded(input, usize::from(length), Self::FIXED + 8, "flow stats")?;
        let (b, _) = be_u16(whole)?;
        let (b, table_id) = be_u8(b)?;
        let (b, ()) = pad(b, 1)?;
        let (b, duration_sec) = be_u32(b)?;
        let (b, duration_nsec) = be_u32(b)?;
        let (b, priority) = be_u16(b)?;
        let (b, idle_timeout) = be_u16(b)?;
        let (b, hard_timeout) = be_u16(b)?;
        let (b, flags) = be_u16(b)?;
        let (b, ()) = pad(b, 4)?;
        let (b, cookie) = be_u64(b)?;
        let (b, packet_count) = be_u64(b)?;
        let (b, byte_count) = be_u64(b)?;
        let (b, match_) = Match::parse(b)?;
        let instructions = parse_instructions(b)?;
        let stats = FlowStats {
            table_id,
            duration_sec,
            duration_nsec,
            priority,
            idle_timeout,
            hard_timeout,
            flags,
            cookie,
            packet_count,
            byte_count,
            match_,
            instructions,
        };
        Ok((rest, stats))
    }

    pub fn into_owned(self) -> FlowStats<'static> {
        FlowStats {
            match_: self.match_.into_owned(),
            instructions: instructions_into_owned(self.instructions),
            ..self
        }
    }
}

/// `ofp_aggregate_stats_reply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct AggregateStats {
    pub packet_count: u64,
    pub byte_count: u64,
    pub flow_count: u32,
}

impl AggregateStats {
    pub const LEN: usize = 24;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        buf.put_u32(self.flow_count);
        buf.put_bytes(0, 4);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, packet_count) = be_u64(b)?;
        let (b, byte_count) = be_u64(b)?;
        let (b, flow_count) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        Ok((
            b,
            AggregateStats {
                packet_count,
                byte_count,
                flow_count,
            },
        ))
    }
}

/// `ofp_table_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TableStats {
    pub table_id: u8,
    pub active_count: u32,
    pub lookup_count: u64,
    pub matched_count: u64,
}

impl TableStats {
    pub const LEN: usize = 24;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u8(self.table_id);
        buf.put_bytes(0, 3);
        buf.put_u32(self.active_count);
        buf.put_u64(self.lookup_count);
        buf.put_u64(self.matched_count);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, table_id) = be_u8(b)?;
        let (b, ()) = pad(b, 3)?;
        let (b, active_count) = be_u32(b)?;
        let (b, lookup_count) = be_u64(b)?;
        let (b, matched_count) = be_u64(b)?;
        Ok((
            b,
            TableStats {
                table_id,
                active_count,
                lookup_count,
                matched_count,
            },
        ))
    }
}

/// `ofp_port_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PortStats {
    pub port_no: PortNo,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_frame_err: u64,
    pub rx_over_err: u64,
    pub rx_crc_err: u64,
    pub collisions: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

impl PortStats {
    pub const LEN: usize = 112;

    fn counters(&self) -> [u64; 12] {
        [
            self.rx_packets,
            self.tx_packets,
            self.rx_bytes,
            self.tx_bytes,
            self.rx_dropped,
            self.tx_dropped,
            self.rx_errors,
            self.tx_errors,
            self.rx_frame_err,
            self.rx_over_err,
            self.rx_crc_err,
            self.collisions,
        ]
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.port_no.value());
        buf.put_bytes(0, 4);
        for v in self.counters() {
            buf.put_u64(v);
        }
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, port_no) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        let (b, rx_packets) = be_u64(b)?;
        let (b, tx_packets) = be_u64(b)?;
        let (b, rx_bytes) = be_u64(b)?;
        let (b, tx_bytes) = be_u64(b)?;
        let (b, rx_dropped) = be_u64(b)?;
        let (b, tx_dropped) = be_u64(b)?;
        let (b, rx_errors) = be_u64(b)?;
        let (b, tx_errors) = be_u64(b)?;
        let (b, rx_frame_err) = be_u64(b)?;
        let (b, rx_over_err) = be_u64(b)?;
        let (b, rx_crc_err) = be_u64(b)?;
        let (b, collisions) = be_u64(b)?;
        let (b, duration_sec) = be_u32(b)?;
        let (b, duration_nsec) = be_u32(b)?;
        let stats = PortStats {
            port_no: port_no.into(),
            rx_packets,
            tx_packets,
            rx_bytes,
            tx_bytes,
            rx_dropped,
            tx_dropped,
            rx_errors,
            tx_errors,
            rx_frame_err,
            rx_over_err,
            rx_crc_err,
            collisions,
            duration_sec,
            duration_nsec,
        };
        Ok((b, stats))
    }
}

/// `ofp_queue_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct QueueStats {
    pub port_no: PortNo,
    pub queue_id: u32,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
}

impl QueueStats {
    pub const LEN: usize = 40;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.port_no.value());
        buf.put_u32(self.queue_id);
        buf.put_u64(self.tx_bytes);
        buf.put_u64(self.tx_packets);
        buf.put_u64(self.tx_errors);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, port_no) = be_u32(b)?;
        let (b, queue_id) = be_u32(b)?;
        let (b, tx_bytes) = be_u64(b)?;
        let (b, tx_packets) = be_u64(b)?;
        let (b, tx_errors) = be_u64(b)?;
        let (b, duration_sec) = be_u32(b)?;
        let (b, duration_nsec) = be_u32(b)?;
        let stats = QueueStats {
            port_no: port_no.into(),
            queue_id,
            tx_bytes,
            tx_packets,
            tx_errors,
            duration_sec,
            duration_nsec,
        };
        Ok((b, stats))
    }
}

/// `ofp_bucket_counter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BucketCounter {
    pub packet_count: u64,
    pub byte_count: u64,
}

impl BucketCounter {
    pub const LEN: usize = 16;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, packet_count) = be_u64(b)?;
        let (b, byte_count) = be_u64(b)?;
        Ok((
            b,
            BucketCounter {
                packet_count,
                byte_count,
            },
        ))
    }
}

/// `ofp_group_stats`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct GroupStats {
    pub group_id: u32,
    pub ref_count: u32,
    pub packet_count: u64,
    pub byte_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub bucket_stats: Vec<BucketCounter>,
}

impl GroupStats {
    const FIXED: usize = 40;

    pub fn buffer_len(&self) -> usize {
        Self::FIXED + BucketCounter::LEN * self.bucket_stats.len()
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.buffer_len() as u16);
        buf.put_bytes(0, 2);
        buf.put_u32(self.group_id);
        buf.put_u32(self.ref_count);
        buf.put_bytes(0, 4);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        for c in &self.bucket_stats {
            c.emit(buf);
        }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, Self> {
        let (_, length) = be_u16(input)?;
        let (rest, whole) = bounded(input, usize::from(length), Self::FIXED, "group stats")?;
        let (b, _) = be_u16(whole)?;
        let (b, ()) = pad(b, 2)?;
        let (b, group_id) = be_u32(b)?;
        let (b, ref_count) = be_u32(b)?;
        let (b, ()) = pad(b, 4)?;
        let (b, packet_count) = be_u64(b)?;
        let (b, byte_count) = be_u64(b)?;
        let (b, duration_sec) = be_u32(b)?;
        let (b, duration_nsec) = be_u32(b)?;
        let bucket_stats = many(b, BucketCounter::parse)?;
        let stats = GroupStats {
            group_id,
            ref_count,
            packet_count,
            byte_count,
            duration_sec,
            duration_nsec,
            bucket_stats,
        };
        Ok((rest, stats))
    }
}

/// `ofp_group_desc`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct GroupDesc<'a> {
    #[serde(rename = "type")]
    pub group_type: GroupType,
    pub group_id: u32,
    pub buckets: Vec<Bucket<'a>>,
}

impl<'a> GroupDesc<'a> {
    const FIXED: usize = 8;

    pub fn buffer_len(&self) -> usize {
        Self::FIXED + buckets_len(&self.buckets)
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.buffer_len() as u16);
        buf.put_u8(self.group_type.value());
        buf.put_u8(0);
        buf.put_u32(self.group_id);
        for b in &self.buckets {
            b.emit(buf);
        }
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (_, length) = be_u16(input)?;
        let (rest, whole) = bounded(input, usize::from(length), Self::FIXED, "group desc")?;
        let (b, _) = be_u16(whole)?;
        let (b, group_type) = be_u8(b)?;
        let (b, ()) = pad(b, 1)?;
        let (b, group_id) = be_u32(b)?;
        let buckets = parse_buckets(b)?;
        Ok((
            rest,
            GroupDesc {
                group_type: group_type.into(),
                group_id,
                buckets,
            },
        ))
    }

    pub fn into_owned(self) -> GroupDesc<'static> {
        GroupDesc {
            buckets: buckets_into_owned(self.buckets),
            ..self
        }
    }
}

/// `ofp_group_features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct GroupFeatures {
    /// Bitmap of `ofp_group_type` values supported.
    pub types: u32,
    /// `ofp_group_capabilities` bits.
    pub capabilities: u32,
    /// Maximum number of groups for each type.
    pub max_groups: [u32; 4],
    /// Bitmaps of `ofp_action_type` values supported, per group type.
    pub actions: [u32; 4],
}

impl GroupFeatures {
    pub const LEN: usize = 40;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.types);
        buf.put_u32(self.capabilities);
        for v in self.max_groups.iter().chain(&self.actions) {
            buf.put_u32(*v);
        }
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        fn per_type(mut b: &[u8]) -> PResult<'_, [u32; 4]> {
            let mut out = [0u32; 4];
            for v in &mut out {
                (b, *v) = be_u32(b)?;
            }
            Ok((b, out))
        }
        let (b, types) = be_u32(b)?;
        let (b, capabilities) = be_u32(b)?;
        let (b, max_groups) = per_type(b)?;
        let (b, actions) = per_type(b)?;
        Ok((
            b,
            GroupFeatures {
                types,
                capabilities,
                max_groups,
                actions,
            },
        ))
    }
}

/// `ofp_meter_band_stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct MeterBandStats {
    pub packet_band_count: u64,
    pub byte_band_count: u64,
}

impl MeterBandStats {
    pub const LEN: usize = 16;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u64(self.packet_band_count);
        buf.put_u64(self.byte_band_count);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, packet_band_count) = be_u64(b)?;
        let (b, byte_band_count) = be_u64(b)?;
        Ok((
            b,
            MeterBandStats {
                packet_band_count,
                byte_band_count,
            },
        ))
    }
}

/// `ofp_meter_stats`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MeterStats {
    pub meter_id: u32,
    pub flow_count: u32,
    pub packet_in_count: u64,
    pub byte_in_count: u64,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub band_stats: Vec<MeterBandStats>,
}

impl MeterStats {
    const FIXED: usize = 40;

    pub fn buffer_len(&self) -> usize {
        Self::FIXED + MeterBandStats::LEN * self.band_stats.len()
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.meter_id);
        buf.put_u16(self.buffer_len() as u16);
        buf.put_bytes(0, 6);
        buf.put_u32(self.flow_count);
        buf.put_u64(self.packet_in_count);
        buf.put_u64(self.byte_in_count);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        for s in &self.band_stats {
            s.emit(buf);
        }
    }

    pub fn parse(input: &[u8]) -> PResult<'_, Self> {
        let (b, _) = be_u32(input)?;
        let (_, len) = be_u16(b)?;
        let (rest, whole) = bounded(input, usize::from(len), Self::FIXED, "meter stats")?;
        let (b, meter_id) = be_u32(whole)?;
        let (b, _) = be_u16(b)?;
        let (b, ()) = pad(b, 6)?;
        let (b, flow_count) = be_u32(b)?;
        let (b, packet_in_count) = be_u64(b)?;
        let (b, byte_in_count) = be_u64(b)?;
        let (b, duration_sec) = be_u32(b)?;
        let (b, duration_nsec) = be_u32(b)?;
        let band_stats = many(b, MeterBandStats::parse)?;
        let stats = MeterStats {
            meter_id,
            flow_count,
            packet_in_count,
            byte_in_count,
            duration_sec,
            duration_nsec,
            band_stats,
        };
        Ok((rest, stats))
    }
}

/// `ofp_meter_config`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MeterConfig<'a> {
    /// `ofp_meter_flags` bits.
    pub flags: u16,
    pub meter_id: u32,
    pub bands: Vec<MeterBand<'a>>,
}

impl<'a> MeterConfig<'a> {
    const FIXED: usize = 8;

    pub fn buffer_len(&self) -> usize {
        Self::FIXED + bands_len(&self.bands)
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.buffer_len() as u16);
        buf.put_u16(self.flags);
        buf.put_u32(self.meter_id);
        for b in &self.bands {
            b.emit(buf);
        }
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (_, length) = be_u16(input)?;
        let (rest, whole) = bounded(input, usize::from(length), Self::FIXED, "meter config")?;
        let (b, _) = be_u16(whole)?;
        let (b, flags) = be_u16(b)?;
        let (b, meter_id) = be_u32(b)?;
        let bands = parse_bands(b)?;
        Ok((
            rest,
            MeterConfig {
                flags,
                meter_id,
                bands,
            },
        ))
    }

    pub fn into_owned(self) -> MeterConfig<'static> {
        MeterConfig {
            bands: self.bands.into_iter().map(MeterBand::into_owned).collect(),
            ..self
        }
    }
}

/// `ofp_meter_features`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct MeterFeatures {
    pub max_meter: u32,
    /// Bitmap of `ofp_meter_band_type` values supported.
    pub band_types: u32,
    /// `ofp_meter_flags` bits supported.
    pub capabilities: u32,
    pub max_bands: u8,
    pub max_color: u8,
}

impl MeterFeatures {
    pub const LEN: usize = 16;

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u32(self.max_meter);
        buf.put_u32(self.band_types);
        buf.put_u32(self.capabilities);
        buf.put_u8(self.max_bands);
        buf.put_u8(self.max_color);
        buf.put_bytes(0, 2);
    }

    pub fn parse(b: &[u8]) -> PResult<'_, Self> {
        let (b, max_meter) = be_u32(b)?;
        let (b, band_types) = be_u32(b)?;
        let (b, capabilities) = be_u32(b)?;
        let (b, max_bands) = be_u8(b)?;
        let (b, max_color) = be_u8(b)?;
        let (b, ()) = pad(b, 2)?;
        Ok((
            b,
            MeterFeatures {
                max_meter,
                band_types,
                capabilities,
                max_bands,
                max_color,
            },
        ))
    }
}

// ---------------------------------------------------------------------------
// Table features.

enum_with_unknown! {
    /// `ofp_table_feature_prop_type`.
    pub enum TableFeaturePropType(u16) {
        Instructions = 0 => "INSTRUCTIONS",
        InstructionsMiss = 1 => "INSTRUCTIONS_MISS",
        NextTables = 2 => "NEXT_TABLES",
        NextTablesMiss = 3 => "NEXT_TABLES_MISS",
        WriteActions = 4 => "WRITE_ACTIONS",
        WriteActionsMiss = 5 => "WRITE_ACTIONS_MISS",
        ApplyActions = 6 => "APPLY_ACTIONS",
        ApplyActionsMiss = 7 => "APPLY_ACTIONS_MISS",
        Match = 8 => "MATCH",
        Wildcards = 10 => "WILDCARDS",
        WriteSetfield = 12 => "WRITE_SETFIELD",
        WriteSetfieldMiss = 13 => "WRITE_SETFIELD_MISS",
        ApplySetfield = 14 => "APPLY_SETFIELD",
        ApplySetfieldMiss = 15 => "APPLY_SETFIELD_MISS",
        Experimenter = 0xfffe => "EXPERIMENTER",
        ExperimenterMiss = 0xffff => "EXPERIMENTER_MISS",
    }
}

/// An instruction header alone (`ofp_instruction` in a table features
/// property): which instructions a table supports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstructionId<'a> {
    pub instruction_type: InstructionType,
    /// Whatever follows the 4-byte header (the experimenter id for
    /// experimenter instructions).
    pub data: Cow<'a, [u8]>,
}

impl<'a> InstructionId<'a> {
    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.instruction_type.value());
        buf.put_u16(self.buffer_len() as u16);
        buf.put_slice(&self.data);
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (r, instruction_type) = be_u16(input)?;
        let (_, len) = be_u16(r)?;
        let (rest, whole) = bounded(input, usize::from(len), 4, "instruction id")?;
        let (data, _) = take(whole, 4)?;
        let instruction_type = InstructionType::from(instruction_type);
        Ok((
            rest,
            InstructionId {
                instruction_type,
                data: Cow::Borrowed(data),
            },
        ))
    }

    pub fn into_owned(self) -> InstructionId<'static> {
        InstructionId {
            instruction_type: self.instruction_type,
            data: owned(self.data),
        }
    }
}

impl Serialize for InstructionId<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &self.instruction_type)?;
        m.serialize_entry("len", &self.buffer_len())?;
        if !self.data.is_empty() {
            m.serialize_entry("data", &hex::encode(&self.data))?;
        }
        m.end()
    }
}

/// An action header alone (`ofp_action_header` in a table features
/// property): which actions a table supports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionId<'a> {
    pub action_type: ActionType,
    /// Whatever follows the 4-byte header (the experimenter id for
    /// experimenter actions).
    pub data: Cow<'a, [u8]>,
}

impl<'a> ActionId<'a> {
    pub fn buffer_len(&self) -> usize {
        4 + self.data.len()
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.action_type.value());
        buf.put_u16(self.buffer_len() as u16);
        buf.put_slice(&self.data);
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (r, action_type) = be_u16(input)?;
        let (_, len) = be_u16(r)?;
        let (rest, whole) = bounded(input, usize::from(len), 4, "action id")?;
        let (data, _) = take(whole, 4)?;
        Ok((
            rest,
            ActionId {
                action_type: action_type.into(),
                data: Cow::Borrowed(data),
            },
        ))
    }

    pub fn into_owned(self) -> ActionId<'static> {
        ActionId {
            action_type: self.action_type,
            data: owned(self.data),
        }
    }
}

impl Serialize for ActionId<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &self.action_type)?;
        m.serialize_entry("len", &self.buffer_len())?;
        if !self.data.is_empty() {
            m.serialize_entry("data", &hex::encode(&self.data))?;
        }
        m.end()
    }
}

/// One table features property (`ofp_table_feature_prop_*`). The `_MISS`
/// variants share their layout with the regular ones, so `miss` tells
/// them apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TableFeatureProp<'a> {
    /// INSTRUCTIONS / INSTRUCTIONS_MISS.
    Instructions {
        miss: bool,
        instruction_ids: Vec<InstructionId<'a>>,
    },
    /// NEXT_TABLES / NEXT_TABLES_MISS.
    NextTables { miss: bool, table_ids: Vec<u8> },
    /// WRITE_ACTIONS / WRITE_ACTIONS_MISS.
    WriteActions {
        miss: bool,
        action_ids: Vec<ActionId<'a>>,
    },
    /// APPLY_ACTIONS / APPLY_ACTIONS_MISS.
    ApplyActions {
        miss: bool,
        action_ids: Vec<ActionId<'a>>,
    },
    /// MATCH.
    Match { oxm_ids: Vec<OxmId> },
    /// WILDCARDS.
    Wildcards { oxm_ids: Vec<OxmId> },
    /// WRITE_SETFIELD / WRITE_SETFIELD_MISS.
    WriteSetfield { miss: bool, oxm_ids: Vec<OxmId> },
    /// APPLY_SETFIELD / APPLY_SETFIELD_MISS.
    ApplySetfield { miss: bool, oxm_ids: Vec<OxmId> },
    /// EXPERIMENTER / EXPERIMENTER_MISS; `data` follows `exp_type`.
    Experimenter {
        miss: bool,
        experimenter: u32,
        exp_type: u32,
        data: Cow<'a, [u8]>,
    },
    /// Another property type; `data` is the content after the 4-byte
    /// header, without the trailing padding.
    Unknown { prop_type: u16, data: Cow<'a, [u8]> },
}

impl<'a> TableFeatureProp<'a> {
    pub fn prop_type(&self) -> TableFeaturePropType {
        use TableFeaturePropType as T;
        let pick = |miss: bool, hit: T, miss_t: T| if miss { miss_t } else { hit };
        match self {
            TableFeatureProp::Instructions { miss, .. } => {
                pick(*miss, T::Instructions, T::InstructionsMiss)
            }
            TableFeatureProp::NextTables { miss, .. } => {
                pick(*miss, T::NextTables, T::NextTablesMiss)
            }
            TableFeatureProp::WriteActions { miss, .. } => {
                pick(*miss, T::WriteActions, T::WriteActionsMiss)
            }
            TableFeatureProp::ApplyActions { miss, .. } => {
                pick(*miss, T::ApplyActions, T::ApplyActionsMiss)
            }
            TableFeatureProp::Match { .. } => T::Match,
            TableFeatureProp::Wildcards { .. } => T::Wildcards,
            TableFeatureProp::WriteSetfield { miss, .. } => {
                pick(*miss, T::WriteSetfield, T::WriteSetfieldMiss)
            }
            TableFeatureProp::ApplySetfield { miss, .. } => {
                pick(*miss, T::ApplySetfield, T::ApplySetfieldMiss)
            }
            TableFeatureProp::Experimenter { miss, .. } => {
                pick(*miss, T::Experimenter, T::ExperimenterMiss)
            }
            TableFeatureProp::Unknown { prop_type, .. } => T::from(*prop_type),
        }
    }

    /// The `length` field: header plus content, without trailing padding.
    pub fn unpadded_len(&self) -> usize {
        let content = match self {
            TableFeatureProp::Instructions {
                instruction_ids, ..
            } => instruction_ids.iter().map(InstructionId::buffer_len).sum(),
            TableFeatureProp::NextTables { table_ids, .. } => table_ids.len(),
            TableFeatureProp::WriteActions { action_ids, .. }
            | TableFeatureProp::ApplyActions { action_ids, .. } => {
                action_ids.iter().map(ActionId::buffer_len).sum()
            }
            TableFeatureProp::Match { oxm_ids }
            | TableFeatureProp::Wildcards { oxm_ids }
            | TableFeatureProp::WriteSetfield { oxm_ids, .. }
            | TableFeatureProp::ApplySetfield { oxm_ids, .. } => {
                oxm_ids.iter().map(OxmId::buffer_len).sum()
            }
            TableFeatureProp::Experimenter { data, .. } => 8 + data.len(),
            TableFeatureProp::Unknown { data, .. } => data.len(),
        };
        4 + content
    }

    /// Encoded length including padding to a multiple of 8.
    pub fn buffer_len(&self) -> usize {
        let n = self.unpadded_len();
        n + pad8(n)
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        let n = self.unpadded_len();
        buf.put_u16(self.prop_type().value());
        buf.put_u16(n as u16);
        match self {
            TableFeatureProp::Instructions {
                instruction_ids, ..
            } => {
                for i in instruction_ids {
                    i.emit(buf);
                }
            }
            TableFeatureProp::NextTables { table_ids, .. } => buf.put_slice(table_ids),
            TableFeatureProp::WriteActions { action_ids, .. }
            | TableFeatureProp::ApplyActions { action_ids, .. } => {
                for a in action_ids {
                    a.emit(buf);
                }
            }
            TableFeatureProp::Match { oxm_ids }
            | TableFeatureProp::Wildcards { oxm_ids }
            | TableFeatureProp::WriteSetfield { oxm_ids, .. }
            | TableFeatureProp::ApplySetfield { oxm_ids, .. } => {
                for o in oxm_ids {
                    o.emit(buf);
                }
            }
            TableFeatureProp::Experimenter {
                experimenter,
                exp_type,
                data,
                ..
            } => {
                buf.put_u32(*experimenter);
                buf.put_u32(*exp_type);
                buf.put_slice(data);
            }
            TableFeatureProp::Unknown { data, .. } => buf.put_slice(data),
        }
        buf.put_bytes(0, pad8(n));
    }

    /// Parses one property and its trailing padding.
    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        use TableFeaturePropType as T;
        let (r, prop_type) = be_u16(input)?;
        let (_, length) = be_u16(r)?;
        let kind = T::from(prop_type);
        let min = match kind {
            T::Experimenter | T::ExperimenterMiss => 12,
            _ => 4,
        };
        let length = usize::from(length);
        let (rest, whole) = bounded(input, length, min, "table feature property")?;
        // The padding is not counted in `length` but must still fit.
        let (rest, ()) = pad(rest, pad8(length)).map_err(|_| {
            // `length` came from a u16, so the cast is lossless.
            let what = "table feature property";
            PErr::at(
                input,
                ErrorKind::BadLength {
                    what,
                    length: length as u32,
                },
            )
        })?;
        let (body, _) = take(whole, 4)?;
        let miss = matches!(
            kind,
            T::InstructionsMiss
                | T::NextTablesMiss
                | T::WriteActionsMiss
                | T::ApplyActionsMiss
                | T::WriteSetfieldMiss
                | T::ApplySetfieldMiss
                | T::ExperimenterMiss
        );
        let oxm_ids = || many(body, OxmId::parse);
        let prop = match kind {
            T::Instructions | T::InstructionsMiss => TableFeatureProp::Instructions {
                miss,
                instruction_ids: many(body, InstructionId::parse)?,
            },
            T::NextTables | T::NextTablesMiss => TableFeatureProp::NextTables {
                miss,
                table_ids: body.to_vec(),
            },
            T::WriteActions | T::WriteActionsMiss => TableFeatureProp::WriteActions {
                miss,
                action_ids: many(body, ActionId::parse)?,
            },
            T::ApplyActions | T::ApplyActionsMiss => TableFeatureProp::ApplyActions {
                miss,
                action_ids: many(body, ActionId::parse)?,
            },
            T::Match => TableFeatureProp::Match {
                oxm_ids: oxm_ids()?,
            },
            T::Wildcards => TableFeatureProp::Wildcards {
                oxm_ids: oxm_ids()?,
            },
            T::WriteSetfield | T::WriteSetfieldMiss => TableFeatureProp::WriteSetfield {
                miss,
                oxm_ids: oxm_ids()?,
            },
            T::ApplySetfield | T::ApplySetfieldMiss => TableFeatureProp::ApplySetfield {
                miss,
                oxm_ids: oxm_ids()?,
            },
            T::Experimenter | T::ExperimenterMiss => {
                let (b, experimenter) = be_u32(body)?;
                let (data, exp_type) = be_u32(b)?;
                TableFeatureProp::Experimenter {
                    miss,
                    experimenter,
                    exp_type,
                    data: Cow::Borrowed(data),
                }
            }
            T::Unknown(_) => TableFeatureProp::Unknown {
                prop_type,
                data: Cow::Borrowed(body),
            },
        };
        Ok((rest, prop))
    }

    pub fn into_owned(self) -> TableFeatureProp<'static> {
        match self {
            TableFeatureProp::Instructions {
                miss,
                instruction_ids,
            } => TableFeatureProp::Instructions {
                miss,
                instruction_ids: instruction_ids
                    .into_iter()
                    .map(InstructionId::into_owned)
                    .collect(),
            },
            TableFeatureProp::NextTables { miss, table_ids } => {
                TableFeatureProp::NextTables { miss, table_ids }
            }
            TableFeatureProp::WriteActions { miss, action_ids } => TableFeatureProp::WriteActions {
                miss,
                action_ids: action_ids.into_iter().map(ActionId::into_owned).collect(),
            },
            TableFeatureProp::ApplyActions { miss, action_ids } => TableFeatureProp::ApplyActions {
                miss,
                action_ids: action_ids.into_iter().map(ActionId::into_owned).collect(),
            },
            TableFeatureProp::Match { oxm_ids } => TableFeatureProp::Match { oxm_ids },
            TableFeatureProp::Wildcards { oxm_ids } => TableFeatureProp::Wildcards { oxm_ids },
            TableFeatureProp::WriteSetfield { miss, oxm_ids } => {
                TableFeatureProp::WriteSetfield { miss, oxm_ids }
            }
            TableFeatureProp::ApplySetfield { miss, oxm_ids } => {
                TableFeatureProp::ApplySetfield { miss, oxm_ids }
            }
            TableFeatureProp::Experimenter {
                miss,
                experimenter,
                exp_type,
                data,
            } => TableFeatureProp::Experimenter {
                miss,
                experimenter,
                exp_type,
                data: owned(data),
            },
            TableFeatureProp::Unknown { prop_type, data } => TableFeatureProp::Unknown {
                prop_type,
                data: owned(data),
            },
        }
    }
}

impl Serialize for TableFeatureProp<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", &self.prop_type())?;
        match self {
            TableFeatureProp::Instructions {
                instruction_ids, ..
            } => m.serialize_entry("instruction_ids", instruction_ids)?,
            TableFeatureProp::NextTables { table_ids, .. } => {
                m.serialize_entry("table_ids", table_ids)?
            }
            TableFeatureProp::WriteActions { action_ids, .. }
            | TableFeatureProp::ApplyActions { action_ids, .. } => {
                m.serialize_entry("action_ids", action_ids)?
            }
            TableFeatureProp::Match { oxm_ids }
            | TableFeatureProp::Wildcards { oxm_ids }
            | TableFeatureProp::WriteSetfield { oxm_ids, .. }
            | TableFeatureProp::ApplySetfield { oxm_ids, .. } => {
                m.serialize_entry("oxm_ids", oxm_ids)?
            }
            TableFeatureProp::Experimenter {
                experimenter,
                exp_type,
                data,
                ..
            } => {
                m.serialize_entry("experimenter", experimenter)?;
                m.serialize_entry("exp_type", exp_type)?;
                m.serialize_entry("data", &hex::encode(data))?;
            }
            TableFeatureProp::Unknown { data, .. } => {
                m.serialize_entry("data", &hex::encode(data))?
            }
        }
        m.end()
    }
}

/// `ofp_table_features`: one table's capabilities (reply) or the
/// configuration to set (request).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TableFeatures<'a> {
    pub table_id: u8,
    pub name: FixedStr<32>,
    pub metadata_match: u64,
    pub metadata_write: u64,
    pub config: u32,
    pub max_entries: u32,
    pub properties: Vec<TableFeatureProp<'a>>,
}

impl<'a> TableFeatures<'a> {
    const FIXED: usize = 64;

    pub fn buffer_len(&self) -> usize {
        Self::FIXED
            + self
                .properties
                .iter()
                .map(TableFeatureProp::buffer_len)
                .sum::<usize>()
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        buf.put_u16(self.buffer_len() as u16);
        buf.put_u8(self.table_id);
        buf.put_bytes(0, 5);
        buf.put_slice(&self.name.0);
        buf.put_u64(self.metadata_match);
        buf.put_u64(self.metadata_write);
        buf.put_u32(self.config);
        buf.put_u32(self.max_entries);
        for p in &self.properties {
            p.emit(buf);
        }
    }

    pub fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (_, length) = be_u16(input)?;
        let (rest, whole) = bounded(input, usize::from(length), Self::FIXED, "table features")?;
        let (b, _) = be_u16(whole)?;
        let (b, table_id) = be_u8(b)?;
        let (b, ()) = pad(b, 5)?;
        let (b, name) = array::<32>(b)?;
        let (b, metadata_match) = be_u64(b)?;
        let (b, metadata_write) = be_u64(b)?;
        let (b, config) = be_u32(b)?;
        let (b, max_entries) = be_u32(b)?;
        let properties = many(b, TableFeatureProp::parse)?;
        let tf = TableFeatures {
            table_id,
            name: FixedStr(name),
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        };
        Ok((rest, tf))
    }

    pub fn into_owned(self) -> TableFeatures<'static> {
        TableFeatures {
            properties: self
                .properties
                .into_iter()
                .map(TableFeatureProp::into_owned)
                .collect(),
            ..self
        }
    }
}

fn table_features_len(t: &[TableFeatures<'_>]) -> usize {
    t.iter().map(TableFeatures::buffer_len).sum()
}

fn table_features_into_owned(t: Vec<TableFeatures<'_>>) -> Vec<TableFeatures<'static>> {
    t.into_iter().map(TableFeatures::into_owned).collect()
}

// ---------------------------------------------------------------------------
// Request and reply.

/// The body of a MULTIPART_REQUEST, by multipart type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MultipartRequestBody<'a> {
    Desc,
    Flow(FlowStatsRequest<'a>),
    Aggregate(FlowStatsRequest<'a>),
    Table,
    PortStats(PortStatsRequest),
    Queue(QueueStatsRequest),
    Group(GroupStatsRequest),
    GroupDesc,
    GroupFeatures,
    Meter(MeterMultipartRequest),
    MeterConfig(MeterMultipartRequest),
    MeterFeatures,
    /// Empty to query, or the tables' new configuration.
    TableFeatures(Vec<TableFeatures<'a>>),
    PortDesc,
    Experimenter(ExperimenterMultipart<'a>),
}

impl<'a> MultipartRequestBody<'a> {
    pub fn multipart_type(&self) -> MultipartType {
        use MultipartRequestBody as R;
        match self {
            R::Desc => MultipartType::Desc,
            R::Flow(_) => MultipartType::Flow,
            R::Aggregate(_) => MultipartType::Aggregate,
            R::Table => MultipartType::Table,
            R::PortStats(_) => MultipartType::PortStats,
            R::Queue(_) => MultipartType::Queue,
            R::Group(_) => MultipartType::Group,
            R::GroupDesc => MultipartType::GroupDesc,
            R::GroupFeatures => MultipartType::GroupFeatures,
            R::Meter(_) => MultipartType::Meter,
            R::MeterConfig(_) => MultipartType::MeterConfig,
            R::MeterFeatures => MultipartType::MeterFeatures,
            R::TableFeatures(_) => MultipartType::TableFeatures,
            R::PortDesc => MultipartType::PortDesc,
            R::Experimenter(_) => MultipartType::Experimenter,
        }
    }

    pub fn buffer_len(&self) -> usize {
        use MultipartRequestBody as R;
        match self {
            R::Desc
            | R::Table
            | R::GroupDesc
            | R::GroupFeatures
            | R::MeterFeatures
            | R::PortDesc => 0,
            R::Flow(f) | R::Aggregate(f) => f.buffer_len(),
            R::PortStats(_) => PortStatsRequest::LEN,
            R::Queue(_) => QueueStatsRequest::LEN,
            R::Group(_) => GroupStatsRequest::LEN,
            R::Meter(_) | R::MeterConfig(_) => MeterMultipartRequest::LEN,
            R::TableFeatures(t) => table_features_len(t),
            R::Experimenter(e) => e.buffer_len(),
        }
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        use MultipartRequestBody as R;
        match self {
            R::Desc
            | R::Table
            | R::GroupDesc
            | R::GroupFeatures
            | R::MeterFeatures
            | R::PortDesc => {}
            R::Flow(f) | R::Aggregate(f) => f.emit(buf),
            R::PortStats(p) => p.emit(buf),
            R::Queue(q) => q.emit(buf),
            R::Group(g) => g.emit(buf),
            R::Meter(m) | R::MeterConfig(m) => m.emit(buf),
            R::TableFeatures(t) => {
                for tf in t {
                    tf.emit(buf);
                }
            }
            R::Experimenter(e) => e.emit(buf),
        }
    }

    /// Parses the body of a request of type `mp_type`, which must fill `b`.
    pub fn parse(mp_type: u16, b: &'a [u8]) -> Result<Self, nom::Err<PErr>> {
        use MultipartRequestBody as R;
        let empty = |body: R<'a>| done(b).map(|()| body);
        Ok(match MultipartType::from(mp_type) {
            MultipartType::Desc => empty(R::Desc)?,
            MultipartType::Flow => R::Flow(exact(b, FlowStatsRequest::parse)?),
            MultipartType::Aggregate => R::Aggregate(exact(b, FlowStatsRequest::parse)?),
            MultipartType::Table => empty(R::Table)?,
            MultipartType::PortStats => R::PortStats(exact(b, PortStatsRequest::parse)?),
            MultipartType::Queue => R::Queue(exact(b, QueueStatsRequest::parse)?),
            MultipartType::Group => R::Group(exact(b, GroupStatsRequest::parse)?),
            MultipartType::GroupDesc => empty(R::GroupDesc)?,
            MultipartType::GroupFeatures => empty(R::GroupFeatures)?,
            MultipartType::Meter => R::Meter(exact(b, MeterMultipartRequest::parse)?),
            MultipartType::MeterConfig => R::MeterConfig(exact(b, MeterMultipartRequest::parse)?),
            MultipartType::MeterFeatures => empty(R::MeterFeatures)?,
            MultipartType::TableFeatures => R::TableFeatures(many(b, TableFeatures::parse)?),
            MultipartType::PortDesc => empty(R::PortDesc)?,
            MultipartType::Experimenter => R::Experimenter(exact(b, ExperimenterMultipart::parse)?),
            MultipartType::Unknown(_) => {
                return Err(PErr::at(b, ErrorKind::BadMultipartType { mp_type }));
            }
        })
    }

    pub fn into_owned(self) -> MultipartRequestBody<'static> {
        use MultipartRequestBody as R;
        match self {
            R::Desc => R::Desc,
            R::Flow(f) => R::Flow(f.into_owned()),
            R::Aggregate(f) => R::Aggregate(f.into_owned()),
            R::Table => R::Table,
            R::PortStats(p) => R::PortStats(p),
            R::Queue(q) => R::Queue(q),
            R::Group(g) => R::Group(g),
            R::GroupDesc => R::GroupDesc,
            R::GroupFeatures => R::GroupFeatures,
            R::Meter(m) => R::Meter(m),
            R::MeterConfig(m) => R::MeterConfig(m),
            R::MeterFeatures => R::MeterFeatures,
            R::TableFeatures(t) => R::TableFeatures(table_features_into_owned(t)),
            R::PortDesc => R::PortDesc,
            R::Experimenter(e) => R::Experimenter(e.into_owned()),
        }
    }
}

/// The body of a MULTIPART_REPLY, by multipart type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MultipartReplyBody<'a> {
    /// Boxed: at 1056 bytes it would otherwise size every reply.
    Desc(Box<Desc>),
    Flow(Vec<FlowStats<'a>>),
    Aggregate(AggregateStats),
    Table(Vec<TableStats>),
    PortStats(Vec<PortStats>),
    Queue(Vec<QueueStats>),
    Group(Vec<GroupStats>),
    GroupDesc(Vec<GroupDesc<'a>>),
    GroupFeatures(GroupFeatures),
    Meter(Vec<MeterStats>),
    MeterConfig(Vec<MeterConfig<'a>>),
    MeterFeatures(MeterFeatures),
    TableFeatures(Vec<TableFeatures<'a>>),
    PortDesc(Vec<Port>),
    Experimenter(ExperimenterMultipart<'a>),
}

impl<'a> MultipartReplyBody<'a> {
    pub fn multipart_type(&self) -> MultipartType {
        use MultipartReplyBody as R;
        match self {
            R::Desc(_) => MultipartType::Desc,
            R::Flow(_) => MultipartType::Flow,
            R::Aggregate(_) => MultipartType::Aggregate,
            R::Table(_) => MultipartType::Table,
            R::PortStats(_) => MultipartType::PortStats,
            R::Queue(_) => MultipartType::Queue,
            R::Group(_) => MultipartType::Group,
            R::GroupDesc(_) => MultipartType::GroupDesc,
            R::GroupFeatures(_) => MultipartType::GroupFeatures,
            R::Meter(_) => MultipartType::Meter,
            R::MeterConfig(_) => MultipartType::MeterConfig,
            R::MeterFeatures(_) => MultipartType::MeterFeatures,
            R::TableFeatures(_) => MultipartType::TableFeatures,
            R::PortDesc(_) => MultipartType::PortDesc,
            R::Experimenter(_) => MultipartType::Experimenter,
        }
    }

    pub fn buffer_len(&self) -> usize {
        use MultipartReplyBody as R;
        match self {
            R::Desc(_) => Desc::LEN,
            R::Flow(v) => v.iter().map(FlowStats::buffer_len).sum(),
            R::Aggregate(_) => AggregateStats::LEN,
            R::Table(v) => TableStats::LEN * v.len(),
            R::PortStats(v) => PortStats::LEN * v.len(),
            R::Queue(v) => QueueStats::LEN * v.len(),
            R::Group(v) => v.iter().map(GroupStats::buffer_len).sum(),
            R::GroupDesc(v) => v.iter().map(GroupDesc::buffer_len).sum(),
            R::GroupFeatures(_) => GroupFeatures::LEN,
            R::Meter(v) => v.iter().map(MeterStats::buffer_len).sum(),
            R::MeterConfig(v) => v.iter().map(MeterConfig::buffer_len).sum(),
            R::MeterFeatures(_) => MeterFeatures::LEN,
            R::TableFeatures(v) => table_features_len(v),
            R::PortDesc(v) => Port::LEN * v.len(),
            R::Experimenter(e) => e.buffer_len(),
        }
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        use MultipartReplyBody as R;
        match self {
            R::Desc(d) => d.emit(buf),
            R::Flow(v) => v.iter().for_each(|x| x.emit(buf)),
            R::Aggregate(a) => a.emit(buf),
            R::Table(v) => v.iter().for_each(|x| x.emit(buf)),
            R::PortStats(v) => v.iter().for_each(|x| x.emit(buf)),
            R::Queue(v) => v.iter().for_each(|x| x.emit(buf)),
            R::Group(v) => v.iter().for_each(|x| x.emit(buf)),
            R::GroupDesc(v) => v.iter().for_each(|x| x.emit(buf)),
            R::GroupFeatures(g) => g.emit(buf),
            R::Meter(v) => v.iter().for_each(|x| x.emit(buf)),
            R::MeterConfig(v) => v.iter().for_each(|x| x.emit(buf)),
            R::MeterFeatures(m) => m.emit(buf),
            R::TableFeatures(v) => v.iter().for_each(|x| x.emit(buf)),
            R::PortDesc(v) => v.iter().for_each(|x| x.emit(buf)),
            R::Experimenter(e) => e.emit(buf),
        }
    }

    /// Parses the body of a reply of type `mp_type`, which must fill `b`.
    pub fn parse(mp_type: u16, b: &'a [u8]) -> Result<Self, nom::Err<PErr>> {
        use MultipartReplyBody as R;
        Ok(match MultipartType::from(mp_type) {
            MultipartType::Desc => R::Desc(Box::new(exact(b, Desc::parse)?)),
            MultipartType::Flow => R::Flow(many(b, FlowStats::parse)?),
            MultipartType::Aggregate => R::Aggregate(exact(b, AggregateStats::parse)?),
            MultipartType::Table => R::Table(many(b, TableStats::parse)?),
            MultipartType::PortStats => R::PortStats(many(b, PortStats::parse)?),
            MultipartType::Queue => R::Queue(many(b, QueueStats::parse)?),
            MultipartType::Group => R::Group(many(b, GroupStats::parse)?),
            MultipartType::GroupDesc => R::GroupDesc(many(b, GroupDesc::parse)?),
            MultipartType::GroupFeatures => R::GroupFeatures(exact(b, GroupFeatures::parse)?),
            MultipartType::Meter => R::Meter(many(b, MeterStats::parse)?),
            MultipartType::MeterConfig => R::MeterConfig(many(b, MeterConfig::parse)?),
            MultipartType::MeterFeatures => R::MeterFeatures(exact(b, MeterFeatures::parse)?),
            MultipartType::TableFeatures => R::TableFeatures(many(b, TableFeatures::parse)?),
            MultipartType::PortDesc => R::PortDesc(many(b, Port::parse)?),
            MultipartType::Experimenter => R::Experimenter(exact(b, ExperimenterMultipart::parse)?),
            MultipartType::Unknown(_) => {
                return Err(PErr::at(b, ErrorKind::BadMultipartType { mp_type }));
            }
        })
    }

    pub fn into_owned(self) -> MultipartReplyBody<'static> {
        use MultipartReplyBody as R;
        match self {
            R::Desc(d) => R::Desc(d),
            R::Flow(v) => R::Flow(v.into_iter().map(FlowStats::into_owned).collect()),
            R::Aggregate(a) => R::Aggregate(a),
            R::Table(v) => R::Table(v),
            R::PortStats(v) => R::PortStats(v),
            R::Queue(v) => R::Queue(v),
            R::Group(v) => R::Group(v),
            R::GroupDesc(v) => R::GroupDesc(v.into_iter().map(GroupDesc::into_owned).collect()),
            R::GroupFeatures(g) => R::GroupFeatures(g),
            R::Meter(v) => R::Meter(v),
            R::MeterConfig(v) => {
                R::MeterConfig(v.into_iter().map(MeterConfig::into_owned).collect())
            }
            R::MeterFeatures(m) => R::MeterFeatures(m),
            R::TableFeatures(v) => R::TableFeatures(table_features_into_owned(v)),
            R::PortDesc(v) => R::PortDesc(v),
            R::Experimenter(e) => R::Experimenter(e.into_owned()),
        }
    }
}

/// Reads the multipart header: (type, flags).
fn parse_header(b: &[u8]) -> PResult<'_, (u16, u16)> {
    let (b, mp_type) = be_u16(b)?;
    let (b, flags) = be_u16(b)?;
    let (b, ()) = pad(b, 4)?;
    Ok((b, (mp_type, flags)))
}

fn emit_header<B: Sink>(buf: &mut B, mp_type: MultipartType, flags: u16) {
    buf.put_u16(mp_type.value());
    buf.put_u16(flags);
    buf.put_bytes(0, 4);
}

/// MULTIPART_REQUEST (`ofp_multipart_request`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MultipartRequest<'a> {
    /// `OFPMPF_REQ_MORE` when more requests of this type follow.
    pub flags: u16,
    pub body: MultipartRequestBody<'a>,
}

impl<'a> MultipartRequest<'a> {
    pub fn multipart_type(&self) -> MultipartType {
        self.body.multipart_type()
    }

    /// Everything after the OpenFlow header.
    pub fn buffer_len(&self) -> usize {
        MULTIPART_HEADER_LEN + self.body.buffer_len()
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        emit_header(buf, self.multipart_type(), self.flags);
        self.body.emit(buf);
    }

    /// Parses everything after the OpenFlow header.
    pub fn parse(b: &'a [u8]) -> PResult<'a, Self> {
        let (b, (mp_type, flags)) = parse_header(b)?;
        let body = MultipartRequestBody::parse(mp_type, b)?;
        Ok((&[], MultipartRequest { flags, body }))
    }

    pub fn into_owned(self) -> MultipartRequest<'static> {
        MultipartRequest {
            flags: self.flags,
            body: self.body.into_owned(),
        }
    }
}

/// MULTIPART_REPLY (`ofp_multipart_reply`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MultipartReply<'a> {
    /// `OFPMPF_REPLY_MORE` when more replies of this type follow.
    pub flags: u16,
    pub body: MultipartReplyBody<'a>,
}

impl<'a> MultipartReply<'a> {
    pub fn multipart_type(&self) -> MultipartType {
        self.body.multipart_type()
    }

    /// Everything after the OpenFlow header.
    pub fn buffer_len(&self) -> usize {
        MULTIPART_HEADER_LEN + self.body.buffer_len()
    }

    pub fn emit<B: Sink>(&self, buf: &mut B) {
        emit_header(buf, self.multipart_type(), self.flags);
        self.body.emit(buf);
    }

    /// Parses everything after the OpenFlow header.
    pub fn parse(b: &'a [u8]) -> PResult<'a, Self> {
        let (b, (mp_type, flags)) = parse_header(b)?;
        let body = MultipartReplyBody::parse(mp_type, b)?;
        Ok((&[], MultipartReply { flags, body }))
    }

    pub fn into_owned(self) -> MultipartReply<'static> {
        MultipartReply {
            flags: self.flags,
            body: self.body.into_owned(),
        }
    }
}

// ---------------------------------------------------------------------------
// JSON: the multipart header's fields and the body's in one flat map.

/// The JSON shape shared by requests and replies; `body` is flattened, so
/// a struct body contributes its fields, [`ListBody`] a `"body"` array and
/// `()` nothing.
#[derive(Serialize)]
struct Flat<'r, T: Serialize> {
    multipart_type: MultipartType,
    flags: u16,
    #[serde(flatten)]
    body: &'r T,
}

#[derive(Serialize)]
struct ListBody<'r, T: Serialize> {
    body: &'r [T],
}

fn flat<S: Serializer, T: Serialize>(
    s: S,
    multipart_type: MultipartType,
    flags: u16,
    body: &T,
) -> Result<S::Ok, S::Error> {
    Flat {
        multipart_type,
        flags,
        body,
    }
    .serialize(s)
}

fn list<S: Serializer, T: Serialize>(
    s: S,
    multipart_type: MultipartType,
    flags: u16,
    body: &[T],
) -> Result<S::Ok, S::Error> {
    flat(s, multipart_type, flags, &ListBody { body })
}

impl Serialize for MultipartRequest<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use MultipartRequestBody as R;
        let (t, f) = (self.multipart_type(), self.flags);
        match &self.body {
            R::Desc
            | R::Table
            | R::GroupDesc
            | R::GroupFeatures
            | R::MeterFeatures
            | R::PortDesc => flat(s, t, f, &()),
            R::Flow(r) | R::Aggregate(r) => flat(s, t, f, r),
            R::PortStats(r) => flat(s, t, f, r),
            R::Queue(r) => flat(s, t, f, r),
            R::Group(r) => flat(s, t, f, r),
            R::Meter(r) | R::MeterConfig(r) => flat(s, t, f, r),
            R::TableFeatures(v) => list(s, t, f, v),
            R::Experimenter(e) => flat(s, t, f, e),
        }
    }
}

impl Serialize for MultipartReply<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use MultipartReplyBody as R;
        let (t, f) = (self.multipart_type(), self.flags);
        match &self.body {
            R::Desc(d) => flat(s, t, f, &**d),
            R::Flow(v) => list(s, t, f, v),
            R::Aggregate(a) => flat(s, t, f, a),
            R::Table(v) => list(s, t, f, v),
            R::PortStats(v) => list(s, t, f, v),
            R::Queue(v) => list(s, t, f, v),
            R::Group(v) => list(s, t, f, v),
            R::GroupDesc(v) => list(s, t, f, v),
            R::GroupFeatures(g) => flat(s, t, f, g),
            R::Meter(v) => list(s, t, f, v),
            R::MeterConfig(v) => list(s, t, f, v),
            R::MeterFeatures(m) => flat(s, t, f, m),
            R::TableFeatures(v) => list(s, t, f, v),
            R::PortDesc(v) => list(s, t, f, v),
            R::Experimenter(e) => flat(s, t, f, e),
        }
    }
}

#[cfg(test)]
// Tests fail by panicking; indexing hand-built buffers keeps them readable.
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use crate::error::finish;
    use crate::oxm::Oxm;
    use bytes::BufMut;

    fn req(b: &[u8]) -> MultipartRequest<'_> {
        let (rest, m) = MultipartRequest::parse(b)
            .map_err(|e| finish(b, e))
            .expect("parse");
        assert!(rest.is_empty());
        m
    }

    fn rep(b: &[u8]) -> MultipartReply<'_> {
        let (rest, m) = MultipartReply::parse(b)
            .map_err(|e| finish(b, e))
            .expect("parse");
        assert!(rest.is_empty());
        m
    }

    fn emit_req(m: &MultipartRequest<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        m.emit(&mut v);
        assert_eq!(v.len(), m.buffer_len());
        v
    }

    fn emit_rep(m: &MultipartReply<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        m.emit(&mut v);
        assert_eq!(v.len(), m.buffer_len());
        v
    }

    fn mp_header(v: &mut Vec<u8>, mp_type: u16, flags: u16) {
        v.put_u16(mp_type);
        v.put_u16(flags);
        v.put_bytes(0, 4);
    }

    fn flow_request_bytes() -> Vec<u8> {
        let mut v = Vec::new();
        mp_header(&mut v, 1, 0);
        v.put_u8(3); // table_id
        v.put_bytes(0, 3);
        v.put_u32(0xffff_ffff); // out_port ANY
        v.put_u32(0xffff_ffff); // out_group ANY
        v.put_bytes(0, 4);
        v.put_u64(0x1234); // cookie
        v.put_u64(0xffff); // cookie_mask
        v.put_u16(1); // OFPMT_OXM
        v.put_u16(12);
        v.put_u32(0x8000_0004); // in_port, 4 bytes
        v.put_u32(7);
        v.put_bytes(0, 4);
        v
    }

    #[test]
    fn multipart_flow_stats_request_golden() {
        let b = flow_request_bytes();
        assert_eq!(b.len(), 56);
        let m = req(&b);
        assert_eq!(m.multipart_type(), MultipartType::Flow);
        let MultipartRequestBody::Flow(f) = &m.body else {
            panic!("not a flow request")
        };
        assert_eq!(f.table_id, 3);
        assert_eq!(f.out_port, PortNo::Any);
        assert_eq!(f.cookie, 0x1234);
        assert_eq!(f.cookie_mask, 0xffff);
        assert_eq!(
            f.match_.fields.as_slice(),
            &[Oxm::InPort(PortNo::from(7), None)]
        );
        assert_eq!(emit_req(&m), b);
        assert_eq!(m.buffer_len(), b.len());
        let owned: MultipartRequest<'static> = m.clone().into_owned();
        assert_eq!(emit_req(&owned), b);

        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["multipart_type"], "FLOW");
        assert_eq!(json["flags"], 0);
        assert_eq!(json["out_port"], "ANY");
        assert_eq!(json["match"]["oxm_fields"][0]["field"], "in_port");
    }

    fn port_bytes(v: &mut Vec<u8>) {
        v.put_u32(1);
        v.put_bytes(0, 4);
        v.put_slice(&[0x02, 0, 0, 0, 0, 1]);
        v.put_bytes(0, 2);
        let mut name = [0u8; 16];
        name[..4].copy_from_slice(b"eth1");
        v.put_slice(&name);
        for x in [0u32, 4, 0x2840, 0x2840, 0x2840, 0, 10_000_000, 10_000_000] {
            v.put_u32(x);
        }
    }

    #[test]
    fn multipart_port_desc_reply_golden() {
        let mut b = Vec::new();
        mp_header(&mut b, 13, 0);
        port_bytes(&mut b);
        assert_eq!(b.len(), 8 + Port::LEN);
        let m = rep(&b);
        let MultipartReplyBody::PortDesc(ports) = &m.body else {
            panic!("not port desc")
        };
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].name.as_string(), "eth1");
        assert_eq!(ports[0].curr_speed, 10_000_000);
        assert_eq!(emit_rep(&m), b);
        assert_eq!(m.buffer_len(), b.len());

        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["multipart_type"], "PORT_DESC");
        assert_eq!(json["body"][0]["name"], "eth1");

        // A partial second port is an error, not a silently dropped record.
        drop(m);
        b.put_bytes(0, 10);
        assert!(MultipartReply::parse(&b).is_err());
    }

    #[test]
    fn multipart_meter_features_reply_golden() {
        let mut b = Vec::new();
        mp_header(&mut b, 11, 0);
        b.put_u32(0x0100_0000); // max_meter
        b.put_u32(0x8000_0006); // band_types
        b.put_u32(0xf); // capabilities
        b.put_u8(255); // max_bands
        b.put_u8(0); // max_color
        b.put_bytes(0, 2);
        let m = rep(&b);
        let want = MeterFeatures {
            max_meter: 0x0100_0000,
            band_types: 0x8000_0006,
            capabilities: 0xf,
            max_bands: 255,
            max_color: 0,
        };
        assert_eq!(m.body, MultipartReplyBody::MeterFeatures(want));
        assert_eq!(emit_rep(&m), b);
        assert_eq!(m.buffer_len(), b.len());
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["max_bands"], 255);
        assert!(json.get("body").is_none());

        // Trailing bytes after a fixed-size body are rejected.
        drop(m);
        b.put_u8(0);
        let e = MultipartReply::parse(&b)
            .map_err(|e| finish(&b, e))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::TrailingBytes { count: 1 });
    }

    /// A TABLE_FEATURES reply with one table carrying instruction ids (one
    /// an experimenter id), next tables needing padding, apply actions,
    /// match OXM ids (one experimenter), an experimenter property and an
    /// unknown property type.
    fn table_features_bytes() -> Vec<u8> {
        let mut props = Vec::new();
        // INSTRUCTIONS: goto_table, apply_actions, experimenter 0x2320.
        props.put_u16(0);
        props.put_u16(4 + 4 + 4 + 8);
        props.put_slice(&[0, 1, 0, 4, 0, 4, 0, 4]);
        props.put_slice(&[0xff, 0xff, 0, 8, 0, 0, 0x23, 0x20]);
        props.put_bytes(0, 4);
        // NEXT_TABLES_MISS: 1, 2, 3 (length 7, one pad byte).
        props.put_u16(3);
        props.put_u16(7);
        props.put_slice(&[1, 2, 3]);
        props.put_bytes(0, 1);
        // APPLY_ACTIONS: output, set_field.
        props.put_u16(6);
        props.put_u16(12);
        props.put_slice(&[0, 0, 0, 4, 0, 25, 0, 4]);
        props.put_bytes(0, 4);
        // MATCH: in_port, eth_dst with mask, an experimenter OXM id.
        props.put_u16(8);
        props.put_u16(4 + 4 + 4 + 8);
        props.put_u32(0x8000_0004);
        props.put_u32(0x8000_070c);
        props.put_u32(0xffff_0204);
        props.put_u32(0x4f4e_4600);
        props.put_bytes(0, 4);
        // EXPERIMENTER_MISS with two bytes of data (length 14).
        props.put_u16(0xffff);
        props.put_u16(14);
        props.put_u32(0x65);
        props.put_u32(2);
        props.put_slice(&[0xab, 0xcd]);
        props.put_bytes(0, 2);
        // Unknown type 0x42 with five bytes (length 9, seven pad bytes).
        props.put_u16(0x42);
        props.put_u16(9);
        props.put_slice(&[1, 2, 3, 4, 5]);
        props.put_bytes(0, 7);

        let mut b = Vec::new();
        mp_header(&mut b, 12, 1);
        b.put_u16((64 + props.len()) as u16);
        b.put_u8(0);
        b.put_bytes(0, 5);
        let mut name = [0u8; 32];
        name[..5].copy_from_slice(b"table");
        b.put_slice(&name);
        b.put_u64(u64::MAX);
        b.put_u64(u64::MAX);
        b.put_u32(3);
        b.put_u32(1_000_000);
        b.put_slice(&props);
        b
    }

    #[test]
    fn multipart_table_features_reply_golden() {
        let b = table_features_bytes();
        let m = rep(&b);
        assert_eq!(m.flags, 1);
        let MultipartReplyBody::TableFeatures(tables) = &m.body else {
            panic!("not tf")
        };
        assert_eq!(tables.len(), 1);
        let t = &tables[0];
        assert_eq!(t.name.as_string(), "table");
        assert_eq!(t.max_entries, 1_000_000);
        let types: Vec<_> = t
            .properties
            .iter()
            .map(TableFeatureProp::prop_type)
            .collect();
        assert_eq!(
            types,
            [
                TableFeaturePropType::Instructions,
                TableFeaturePropType::NextTablesMiss,
                TableFeaturePropType::ApplyActions,
                TableFeaturePropType::Match,
                TableFeaturePropType::ExperimenterMiss,
                TableFeaturePropType::Unknown(0x42),
            ]
        );
        let TableFeatureProp::Instructions {
            instruction_ids,
            miss: false,
        } = &t.properties[0]
        else {
            panic!("instructions")
        };
        assert_eq!(instruction_ids.len(), 3);
        assert_eq!(
            instruction_ids[2].instruction_type,
            InstructionType::Experimenter
        );
        assert_eq!(instruction_ids[2].data.as_ref(), &[0, 0, 0x23, 0x20]);
        assert_eq!(
            t.properties[1],
            TableFeatureProp::NextTables {
                miss: true,
                table_ids: vec![1, 2, 3]
            }
        );
        let TableFeatureProp::Match { oxm_ids } = &t.properties[3] else {
            panic!("match")
        };
        assert_eq!(oxm_ids[2].experimenter, Some(0x4f4e_4600));
        assert_eq!(
            t.properties[5],
            TableFeatureProp::Unknown {
                prop_type: 0x42,
                data: Cow::Borrowed(&[1, 2, 3, 4, 5])
            }
        );

        assert_eq!(emit_rep(&m), b);
        assert_eq!(m.buffer_len(), b.len());
        let owned: MultipartReply<'static> = m.clone().into_owned();
        assert_eq!(emit_rep(&owned), b);

        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["multipart_type"], "TABLE_FEATURES");
        let props = &json["body"][0]["properties"];
        assert_eq!(props[0]["type"], "INSTRUCTIONS");
        assert_eq!(props[0]["instruction_ids"][0]["type"], "GOTO_TABLE");
        assert!(props[0]["instruction_ids"][0].get("data").is_none());
        assert_eq!(props[0]["instruction_ids"][2]["data"], "00002320");
        assert_eq!(props[1]["table_ids"], serde_json::json!([1, 2, 3]));
        assert_eq!(props[2]["action_ids"][1]["type"], "SET_FIELD");
        assert_eq!(props[3]["oxm_ids"][0]["field"], "in_port");
        assert_eq!(props[4]["type"], "EXPERIMENTER_MISS");
        assert_eq!(props[4]["data"], "abcd");
        assert_eq!(props[5]["type"], 0x42);
        assert_eq!(props[5]["data"], "0102030405");

        // The same bytes as a request.
        let mut r = b.clone();
        r[1] = 12;
        let q = req(&r);
        assert_eq!(emit_req(&q), r);
    }

    #[test]
    fn multipart_prefixes_never_panic() {
        let mut tf = table_features_bytes();
        tf[1] = 12;
        let mut pd = Vec::new();
        mp_header(&mut pd, 13, 0);
        port_bytes(&mut pd);
        for b in [flow_request_bytes(), tf.clone(), pd] {
            for n in 0..b.len() {
                let cut = &b[..n];
                // The only valid prefix is the bare header, where the body is
                // empty (PORT_DESC request) or an empty list (every reply
                // here, TABLE_FEATURES request); a FLOW request needs a body.
                let bare = n == MULTIPART_HEADER_LEN;
                let req_ok = bare && b[1] != 1;
                assert_eq!(
                    MultipartRequest::parse(cut).is_ok(),
                    req_ok,
                    "request cut at {n}"
                );
                assert_eq!(MultipartReply::parse(cut).is_ok(), bare, "reply cut at {n}");
            }
        }
    }

    #[test]
    fn multipart_bad_lengths() {
        let err = |b: &[u8]| -> ErrorKind {
            MultipartReply::parse(b)
                .map_err(|e| finish(b, e))
                .unwrap_err()
                .kind
        };
        let bad_len = |k: ErrorKind| matches!(k, ErrorKind::BadLength { .. });

        // Unknown multipart type.
        let mut b = Vec::new();
        mp_header(&mut b, 14, 0);
        assert_eq!(err(&b), ErrorKind::BadMultipartType { mp_type: 14 });
        assert!(MultipartRequest::parse(&b).is_err());

        // Flow stats whose length is below the fixed part, zero, and too long.
        for length in [0u16, 4, 55, 0xffff] {
            let mut b = Vec::new();
            mp_header(&mut b, 1, 0);
            b.put_u16(length);
            b.put_bytes(0, 54);
            assert!(bad_len(err(&b)), "flow stats length {length}");
        }

        // Group stats and meter stats shorter than their fixed part.
        let mut b = Vec::new();
        mp_header(&mut b, 6, 0);
        b.put_u16(39);
        b.put_bytes(0, 38);
        assert!(bad_len(err(&b)));
        let mut b = Vec::new();
        mp_header(&mut b, 9, 0);
        b.put_u32(1);
        b.put_u16(8);
        b.put_bytes(0, 34);
        assert!(bad_len(err(&b)));

        // Group stats with a partial bucket counter.
        let mut b = Vec::new();
        mp_header(&mut b, 6, 0);
        b.put_u16(48);
        b.put_bytes(0, 46);
        assert!(MultipartReply::parse(&b).is_err());

        let tf = table_features_bytes();
        let first_prop = 8 + 64;
        // A property length below its header.
        let mut b = tf.clone();
        b[first_prop + 3] = 3;
        assert!(bad_len(err(&b)));
        // An experimenter property too short for its ids.
        let mut b = tf.clone();
        b[first_prop] = 0xff;
        b[first_prop + 1] = 0xfe;
        b[first_prop + 2] = 0;
        b[first_prop + 3] = 8;
        assert!(bad_len(err(&b)));
        // An instruction id whose length is below 4.
        let mut b = tf.clone();
        b[first_prop + 7] = 2;
        assert!(bad_len(err(&b)));
        // The last property's length fits but its padding does not.
        let mut b = tf.clone();
        let n = b.len();
        b.truncate(n - 7);
        let tf_len = (n - 7 - 8) as u16;
        b[8..10].copy_from_slice(&tf_len.to_be_bytes());
        assert!(bad_len(err(&b)));
        // A table length past the end.
        let mut b = tf;
        b[8] = 0xff;
        assert!(bad_len(err(&b)));
    }

    #[test]
    fn multipart_mutations_never_panic() {
        let mut inputs = vec![flow_request_bytes(), table_features_bytes()];
        inputs.extend(
            vectors()
                .into_iter()
                .map(|(_, b)| b.get(8..).unwrap_or_default().to_vec()),
        );
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for b in inputs {
            for _ in 0..400 {
                // xorshift: cheap, deterministic, no dependency.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut m = b.clone();
                if m.is_empty() {
                    break;
                }
                let i = (seed as usize) % m.len();
                m[i] = (seed >> 32) as u8;
                if seed & 1 == 0 {
                    m.truncate(((seed >> 40) as usize) % (m.len() + 1));
                }
                let _ = MultipartRequest::parse(&m);
                let _ = MultipartReply::parse(&m);
            }
        }
    }

    /// The shared OpenFlow 1.3 test vectors (Ryu's), as (file name, bytes).
    fn vectors() -> Vec<(String, Vec<u8>)> {
        // The vectors are part of the test contract: missing vectors fail
        // the test rather than skip it.
        let dir = std::env::var_os("TIERFLOW_VECTORS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vectors/of13")
            });
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("OpenFlow vectors not readable at {}: {e}", dir.display()));
        let mut out: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "packet"))
            .filter_map(|p| {
                let name = p.file_name()?.to_string_lossy().into_owned();
                Some((name, std::fs::read(&p).ok()?))
            })
            .filter(|(_, b)| matches!(b.get(1), Some(18 | 19)))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn multipart_vectors_round_trip() {
        let vectors = vectors();
        let mut failures = Vec::new();
        for (name, bytes) in &vectors {
            let body = &bytes[8..];
            let out = if bytes[1] == 18 {
                MultipartRequest::parse(body)
                    .map(|(_, m)| (emit_req(&m), serde_json::to_value(&m).unwrap()))
            } else {
                MultipartReply::parse(body)
                    .map(|(_, m)| (emit_rep(&m), serde_json::to_value(&m).unwrap()))
            };
            match out {
                Ok((emitted, _)) if emitted == body => {}
                Ok(_) => failures.push(format!("{name}: re-encoded bytes differ")),
                Err(e) => failures.push(format!("{name}: {}", finish(body, e))),
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
        assert!(
            vectors.len() >= 30,
            "expected the multipart vectors, found {}",
            vectors.len()
        );
    }

    #[test]
    fn multipart_vectors_decode_fields() {
        let find = |suffix: &str| vectors().into_iter().find(|(n, _)| n.ends_with(suffix));
        let Some((_, b)) = find("ofp_group_stats_reply.packet") else {
            return;
        };
        let m = rep(&b[8..]);
        let MultipartReplyBody::Group(g) = &m.body else {
            panic!("group stats")
        };
        assert_eq!(
            (g[0].group_id, g[0].ref_count, g[0].packet_count),
            (1, 2, 123)
        );
        assert_eq!(g[0].byte_count, 12345);
        assert_eq!((g[0].duration_sec, g[0].duration_nsec), (9, 609_036_000));
        assert_eq!(
            g[0].bucket_stats,
            [BucketCounter {
                packet_count: 234,
                byte_count: 2345
            }]
        );

        let Some((_, b)) = find("ofp_meter_stats_reply.packet") else {
            return;
        };
        let m = rep(&b[8..]);
        let MultipartReplyBody::Meter(s) = &m.body else {
            panic!("meter stats")
        };
        assert_eq!(
            (s[0].meter_id, s[0].duration_nsec, s[0].band_stats.len()),
            (100, 480_000, 1)
        );

        let Some((_, b)) = find("ofp_experimenter_request.packet") else {
            return;
        };
        let m = req(&b[8..]);
        let want = ExperimenterMultipart {
            experimenter: 0xdead_beaf,
            exp_type: 0xcafe_8888,
            data: Cow::Borrowed(b"hogehoge"),
        };
        assert_eq!(m.body, MultipartRequestBody::Experimenter(want));
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["data"], hex::encode(b"hogehoge"));

        let Some((_, b)) = find("ofp_table_features_reply.packet") else {
            return;
        };
        let m = rep(&b[8..]);
        let MultipartReplyBody::TableFeatures(t) = &m.body else {
            panic!("table features")
        };
        assert_eq!(t.len(), 10);
        assert_eq!(t[0].name.as_string(), "私のテーブル");
        assert_eq!(t[0].max_entries, 16_777_216);
        let TableFeatureProp::NextTables { table_ids, .. } = &t[0].properties[1] else {
            panic!("next tables")
        };
        assert_eq!(table_ids.len(), 254);
    }
}
