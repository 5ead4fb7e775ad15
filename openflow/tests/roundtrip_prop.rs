//! Property tests of the codec's round trip: for generated OXMs, actions,
//! instructions, meter bands, buckets and every OpenFlow 1.3 message kind
//! (multipart requests and replies of every type included), encoding gives
//! exactly `buffer_len()` bytes, decoding those bytes gives back the value,
//! and re-encoding the decoded value gives identical bytes. Enumerated
//! fields are generated from arbitrary numbers, so unknown codes are covered
//! as well as named ones. A last group of tests checks that the generators
//! really reach every field, action, instruction, message and multipart
//! type, so a narrowed strategy cannot hollow the properties out unnoticed.

use openflow::action::{Action, ActionType, Actions};
use openflow::consts::{
    ControllerRole, ErrorType, FlowModCommand, FlowRemovedReason, GroupModCommand, GroupType,
    MeterModCommand, MsgType, MultipartType, PacketInReason, PortNo, PortReason,
};
use openflow::group::{Bucket, GroupMod};
use openflow::instruction::{Instruction, InstructionType, Instructions};
use openflow::message::{
    AsyncConfig, ErrorMsg, Experimenter, FeaturesReply, FlowMod, FlowRemoved, HelloElem, PacketIn,
    PacketOut, QueueGetConfigReply, Role, SwitchConfig, TableMod,
};
use openflow::meter::{MeterBand, MeterBandType, MeterMod};
use openflow::multipart::{
    ActionId, AggregateStats, BucketCounter, Desc, ExperimenterMultipart, FlowStats,
    FlowStatsRequest, GroupDesc, GroupFeatures, GroupStats, GroupStatsRequest, InstructionId,
    MeterBandStats, MeterConfig, MeterFeatures, MeterMultipartRequest, MeterStats, MultipartReply,
    MultipartReplyBody, MultipartRequest, MultipartRequestBody, PortStats, PortStatsRequest,
    QueueStats, QueueStatsRequest, TableFeatureProp, TableFeaturePropType, TableFeatures,
    TableStats,
};
use openflow::oxm::{CLASS_EXPERIMENTER, CLASS_OPENFLOW_BASIC, Match, Oxm, OxmId, RawOxm, U24};
use openflow::port::{Port, PortMod, PortStatus};
use openflow::queue::{PacketQueue, QueueProp, QueuePropType};
use openflow::types::{FixedStr, MacAddr};
use openflow::{Message, decode, encode_versioned, to_json};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------------------
// Scalars and byte payloads.

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

fn cow(max: usize) -> impl Strategy<Value = Cow<'static, [u8]>> {
    bytes(max).prop_map(Cow::Owned)
}

/// Reserved port numbers are rare among arbitrary u32s; weight them in.
fn port_no() -> impl Strategy<Value = PortNo> {
    prop_oneof![
        any::<u32>(),
        0xffff_fff8u32..=0xffff_ffff,
        Just(0xffff_ff00),
        0u32..64
    ]
    .prop_map(PortNo::from)
}

fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}

fn u24() -> impl Strategy<Value = U24> {
    (0u32..1 << 24).prop_map(U24)
}

/// A u16 code for which `is_unknown` holds: small values (where the named
/// codes live) are tried as often as arbitrary ones.
fn unknown_u16(is_unknown: fn(u16) -> bool) -> impl Strategy<Value = u16> {
    prop_oneof![0u16..64, any::<u16>()].prop_filter("code has a name", move |v| is_unknown(*v))
}

/// Small codes hit the named values, arbitrary ones the unknown ones.
fn code_u8() -> impl Strategy<Value = u8> {
    prop_oneof![0u8..8, any::<u8>()]
}

fn code_u16() -> impl Strategy<Value = u16> {
    prop_oneof![0u16..16, any::<u16>()]
}

fn code_u32() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..8, any::<u32>()]
}

// ---------------------------------------------------------------------------
// OXM and match.

/// One arm per basic field, each with and without a mask.
macro_rules! basic_oxms {
    ($($variant:ident => $value:expr),+ $(,)?) => {
        prop_oneof![
            $( ($value, option::of($value)).prop_map(|(v, m)| Oxm::$variant(v, m)) ),+
        ]
    };
}

fn basic_oxm() -> impl Strategy<Value = Oxm<'static>> {
    basic_oxms![
        InPort => port_no(),
        InPhyPort => port_no(),
        Metadata => any::<u64>(),
        EthDst => mac(),
        EthSrc => mac(),
        EthType => any::<u16>(),
        VlanVid => any::<u16>(),
        VlanPcp => any::<u8>(),
        IpDscp => any::<u8>(),
        IpEcn => any::<u8>(),
        IpProto => any::<u8>(),
        Ipv4Src => ipv4(),
        Ipv4Dst => ipv4(),
        TcpSrc => any::<u16>(),
        TcpDst => any::<u16>(),
        UdpSrc => any::<u16>(),
        UdpDst => any::<u16>(),
        SctpSrc => any::<u16>(),
        SctpDst => any::<u16>(),
        Icmpv4Type => any::<u8>(),
        Icmpv4Code => any::<u8>(),
        ArpOp => any::<u16>(),
        ArpSpa => ipv4(),
        ArpTpa => ipv4(),
        ArpSha => mac(),
        ArpTha => mac(),
        Ipv6Src => ipv6(),
        Ipv6Dst => ipv6(),
        Ipv6Flabel => any::<u32>(),
        Icmpv6Type => any::<u8>(),
        Icmpv6Code => any::<u8>(),
        Ipv6NdTarget => ipv6(),
        Ipv6NdSll => mac(),
        Ipv6NdTll => mac(),
        MplsLabel => any::<u32>(),
        MplsTc => any::<u8>(),
        MplsBos => any::<u8>(),
        PbbIsid => u24(),
        TunnelId => any::<u64>(),
        Ipv6Exthdr => any::<u16>(),
    ]
}

/// OXMs the codec keeps raw: other classes, basic-class field numbers past
/// the last known one (39), and experimenter OXMs, which must carry at least
/// their 4-byte experimenter id. The field number is 7 bits on the wire.
fn raw_oxm() -> impl Strategy<Value = RawOxm<'static>> {
    let other_class = prop_oneof![
        0u16..CLASS_OPENFLOW_BASIC,
        CLASS_OPENFLOW_BASIC + 1..CLASS_EXPERIMENTER
    ];
    let shapes = prop_oneof![
        3 => (other_class.clone(), 0u8..128, bytes(32)),
        3 => (Just(CLASS_OPENFLOW_BASIC), 40u8..128, bytes(32)),
        3 => (Just(CLASS_EXPERIMENTER), 0u8..128, vec(any::<u8>(), 4..=36)),
        // The payload length is one byte: reach its limit.
        1 => (other_class, 0u8..128, vec(any::<u8>(), 240..=255)),
    ];
    (shapes, any::<bool>()).prop_map(|((class, field, payload), hasmask)| RawOxm {
        class,
        field,
        hasmask,
        payload: Cow::Owned(payload),
    })
}

fn oxm() -> impl Strategy<Value = Oxm<'static>> {
    prop_oneof![4 => basic_oxm(), 1 => raw_oxm().prop_map(Oxm::Raw)]
}

prop_compose! {
    fn match_()(fields in vec(oxm(), 0..6)) -> Match<'static> {
        Match { fields: fields.into_iter().collect() }
    }
}

// ---------------------------------------------------------------------------
// Actions, instructions, buckets, meter bands, queue properties.

fn is_unknown_action(t: u16) -> bool {
    matches!(ActionType::from(t), ActionType::Unknown(_))
}

fn action() -> impl Strategy<Value = Action<'static>> {
    prop_oneof![
        (port_no(), any::<u16>()).prop_map(|(port, max_len)| Action::Output { port, max_len }),
        Just(Action::CopyTtlOut),
        Just(Action::CopyTtlIn),
        any::<u8>().prop_map(|mpls_ttl| Action::SetMplsTtl { mpls_ttl }),
        Just(Action::DecMplsTtl),
        any::<u16>().prop_map(|ethertype| Action::PushVlan { ethertype }),
        Just(Action::PopVlan),
        any::<u16>().prop_map(|ethertype| Action::PushMpls { ethertype }),
        any::<u16>().prop_map(|ethertype| Action::PopMpls { ethertype }),
        any::<u32>().prop_map(|queue_id| Action::SetQueue { queue_id }),
        any::<u32>().prop_map(|group_id| Action::Group { group_id }),
        any::<u8>().prop_map(|nw_ttl| Action::SetNwTtl { nw_ttl }),
        Just(Action::DecNwTtl),
        oxm().prop_map(|field| Action::SetField { field }),
        any::<u16>().prop_map(|ethertype| Action::PushPbb { ethertype }),
        Just(Action::PopPbb),
        // The parser keeps everything after the experimenter id raw, so any
        // length round-trips (the spec's multiple-of-8 rule is the sender's).
        (any::<u32>(), cow(24))
            .prop_map(|(experimenter, data)| Action::Experimenter { experimenter, data }),
        (unknown_u16(is_unknown_action), cow(24))
            .prop_map(|(action_type, data)| Action::Unknown { action_type, data }),
    ]
}

fn actions(max: usize) -> impl Strategy<Value = Actions<'static>> {
    vec(action(), 0..=max).prop_map(|v| v.into_iter().collect())
}

fn is_unknown_instruction(t: u16) -> bool {
    matches!(InstructionType::from(t), InstructionType::Unknown(_))
}

fn instruction() -> impl Strategy<Value = Instruction<'static>> {
    prop_oneof![
        any::<u8>().prop_map(|table_id| Instruction::GotoTable { table_id }),
        any::<(u64, u64)>().prop_map(|(metadata, metadata_mask)| Instruction::WriteMetadata {
            metadata,
            metadata_mask
        }),
        actions(4).prop_map(|actions| Instruction::WriteActions { actions }),
        actions(4).prop_map(|actions| Instruction::ApplyActions { actions }),
        Just(Instruction::ClearActions),
        any::<u32>().prop_map(|meter_id| Instruction::Meter { meter_id }),
        (any::<u32>(), cow(24))
            .prop_map(|(experimenter, data)| Instruction::Experimenter { experimenter, data }),
        (unknown_u16(is_unknown_instruction), cow(24)).prop_map(|(instruction_type, data)| {
            Instruction::Unknown {
                instruction_type,
                data,
            }
        }),
    ]
}

fn instructions() -> impl Strategy<Value = Instructions<'static>> {
    vec(instruction(), 0..4).prop_map(|v| v.into_iter().collect())
}

prop_compose! {
    fn bucket()(
        weight in any::<u16>(),
        watch_port in port_no(),
        watch_group in any::<u32>(),
        actions in actions(4),
    ) -> Bucket<'static> {
        Bucket { weight, watch_port, watch_group, actions }
    }
}

fn is_unknown_band(t: u16) -> bool {
    matches!(MeterBandType::from(t), MeterBandType::Unknown(_))
}

fn meter_band() -> impl Strategy<Value = MeterBand<'static>> {
    prop_oneof![
        any::<(u32, u32)>().prop_map(|(rate, burst_size)| MeterBand::Drop { rate, burst_size }),
        any::<(u32, u32, u8)>().prop_map(|(rate, burst_size, prec_level)| {
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            }
        }),
        (any::<(u32, u32, u32)>(), cow(24)).prop_map(|((rate, burst_size, experimenter), data)| {
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
                data,
            }
        }),
        (unknown_u16(is_unknown_band), any::<(u32, u32)>(), cow(24)).prop_map(
            |(band_type, (rate, burst_size), data)| MeterBand::Unknown {
                band_type,
                rate,
                burst_size,
                data,
            }
        ),
    ]
}

fn is_unknown_queue_prop(t: u16) -> bool {
    matches!(QueuePropType::from(t), QueuePropType::Unknown(_))
}

fn queue_prop() -> impl Strategy<Value = QueueProp<'static>> {
    prop_oneof![
        any::<u16>().prop_map(|rate| QueueProp::MinRate { rate }),
        any::<u16>().prop_map(|rate| QueueProp::MaxRate { rate }),
        (any::<u32>(), cow(16))
            .prop_map(|(experimenter, data)| QueueProp::Experimenter { experimenter, data }),
        (unknown_u16(is_unknown_queue_prop), cow(16))
            .prop_map(|(property, data)| QueueProp::Unknown { property, data }),
    ]
}

prop_compose! {
    fn packet_queue()(
        queue_id in any::<u32>(),
        port in port_no(),
        properties in vec(queue_prop(), 0..4),
    ) -> PacketQueue<'static> {
        PacketQueue { queue_id, port, properties }
    }
}

prop_compose! {
    fn port()(
        port_no in port_no(),
        hw_addr in mac(),
        name in any::<[u8; 16]>(),
        [config, state, curr, advertised, supported, peer, curr_speed, max_speed]
            in any::<[u32; 8]>(),
    ) -> Port {
        Port {
            port_no,
            hw_addr,
            name: FixedStr(name),
            config,
            state,
            curr,
            advertised,
            supported,
            peer,
            curr_speed,
            max_speed,
        }
    }
}

// ---------------------------------------------------------------------------
// Messages outside multipart.

/// A bitmap-shaped element (type 1, whole 32-bit words) always decodes as
/// `VersionBitmap`, so the raw form is generated only for other shapes.
fn hello_elem() -> impl Strategy<Value = HelloElem<'static>> {
    prop_oneof![
        vec(any::<u32>(), 0..4).prop_map(|bitmaps| HelloElem::VersionBitmap { bitmaps }),
        (prop_oneof![Just(1u16), any::<u16>()], bytes(12))
            .prop_filter("bitmap-shaped", |(t, d)| *t != 1 || d.len() % 4 != 0)
            .prop_map(|(elem_type, data)| HelloElem::Unknown {
                elem_type,
                data: Cow::Owned(data)
            }),
    ]
}

/// `experimenter` is set exactly when the type is EXPERIMENTER: the wire
/// format has the field only then.
fn error_msg() -> impl Strategy<Value = ErrorMsg<'static>> {
    prop_oneof![
        (
            code_u16().prop_filter("experimenter type", |t| *t != 0xffff),
            code_u16(),
            cow(64)
        )
            .prop_map(|(t, code, data)| ErrorMsg {
                err_type: ErrorType::from(t),
                code,
                experimenter: None,
                data,
            }),
        (any::<u16>(), any::<u32>(), cow(64)).prop_map(|(code, e, data)| ErrorMsg {
            err_type: ErrorType::Experimenter,
            code,
            experimenter: Some(e),
            data,
        }),
    ]
}

fn async_config() -> impl Strategy<Value = AsyncConfig> {
    any::<[u32; 6]>().prop_map(|[a, b, c, d, e, f]| AsyncConfig {
        packet_in_mask: [a, b],
        port_status_mask: [c, d],
        flow_removed_mask: [e, f],
    })
}

fn role() -> impl Strategy<Value = Role> {
    (code_u32(), any::<u64>()).prop_map(|(r, generation_id)| Role {
        role: ControllerRole::from(r),
        generation_id,
    })
}

fn switch_config() -> impl Strategy<Value = SwitchConfig> {
    any::<(u16, u16)>().prop_map(|(flags, miss_send_len)| SwitchConfig {
        flags,
        miss_send_len,
    })
}

/// The fixed-layout and simple variable-length messages.
fn simple_message() -> impl Strategy<Value = Message<'static>> {
    prop_oneof![
        vec(hello_elem(), 0..4).prop_map(|elements| Message::Hello { elements }),
        error_msg().prop_map(Message::Error),
        cow(64).prop_map(|data| Message::EchoRequest { data }),
        cow(64).prop_map(|data| Message::EchoReply { data }),
        (any::<(u32, u32)>(), cow(64)).prop_map(|((experimenter, exp_type), data)| {
            Message::Experimenter(Experimenter {
                experimenter,
                exp_type,
                data,
            })
        }),
        Just(Message::FeaturesRequest),
        any::<(u64, u32, u8, u8, u32, u32)>().prop_map(
            |(datapath_id, n_buffers, n_tables, auxiliary_id, capabilities, reserved)| {
                Message::FeaturesReply(FeaturesReply {
                    datapath_id,
                    n_buffers,
                    n_tables,
                    auxiliary_id,
                    capabilities,
                    reserved,
                })
            }
        ),
        Just(Message::GetConfigRequest),
        switch_config().prop_map(Message::GetConfigReply),
        switch_config().prop_map(Message::SetConfig),
        (code_u8(), port()).prop_map(|(r, desc)| Message::PortStatus(PortStatus {
            reason: PortReason::from(r),
            desc
        })),
        (port_no(), mac(), any::<(u32, u32, u32)>()).prop_map(
            |(port_no, hw_addr, (config, mask, advertise))| Message::PortMod(PortMod {
                port_no,
                hw_addr,
                config,
                mask,
                advertise,
            })
        ),
        any::<(u8, u32)>()
            .prop_map(|(table_id, config)| Message::TableMod(TableMod { table_id, config })),
        Just(Message::BarrierRequest),
        Just(Message::BarrierReply),
        port_no().prop_map(|port| Message::QueueGetConfigRequest { port }),
        (port_no(), vec(packet_queue(), 0..4)).prop_map(|(port, queues)| {
            Message::QueueGetConfigReply(QueueGetConfigReply { port, queues })
        }),
        role().prop_map(Message::RoleRequest),
        role().prop_map(Message::RoleReply),
        Just(Message::GetAsyncRequest),
        async_config().prop_map(Message::GetAsyncReply),
        async_config().prop_map(Message::SetAsync),
    ]
}

prop_compose! {
    fn packet_in()(
        (buffer_id, total_len, reason, table_id, cookie)
            in (any::<u32>(), any::<u16>(), code_u8(), any::<u8>(), any::<u64>()),
        match_ in match_(),
        data in cow(128),
    ) -> PacketIn<'static> {
        PacketIn {
            buffer_id,
            total_len,
            reason: PacketInReason::from(reason),
            table_id,
            cookie,
            match_,
            data,
        }
    }
}

prop_compose! {
    fn flow_removed()(
        (cookie, priority, reason, table_id) in (any::<u64>(), any::<u16>(), code_u8(), any::<u8>()),
        (duration_sec, duration_nsec, idle_timeout, hard_timeout)
            in any::<(u32, u32, u16, u16)>(),
        (packet_count, byte_count) in any::<(u64, u64)>(),
        match_ in match_(),
    ) -> FlowRemoved<'static> {
        FlowRemoved {
            cookie,
            priority,
            reason: FlowRemovedReason::from(reason),
            table_id,
            duration_sec,
            duration_nsec,
            idle_timeout,
            hard_timeout,
            packet_count,
            byte_count,
            match_,
        }
    }
}

prop_compose! {
    fn packet_out()(
        buffer_id in any::<u32>(),
        in_port in port_no(),
        actions in actions(6),
        data in cow(128),
    ) -> PacketOut<'static> {
        PacketOut { buffer_id, in_port, actions, data }
    }
}

prop_compose! {
    fn flow_mod()(
        (cookie, cookie_mask, table_id, command) in (any::<u64>(), any::<u64>(), any::<u8>(), code_u8()),
        (idle_timeout, hard_timeout, priority, buffer_id) in any::<(u16, u16, u16, u32)>(),
        (out_port, out_group, flags) in (port_no(), any::<u32>(), any::<u16>()),
        match_ in match_(),
        instructions in instructions(),
    ) -> FlowMod<'static> {
        FlowMod {
            cookie,
            cookie_mask,
            table_id,
            command: FlowModCommand::from(command),
            idle_timeout,
            hard_timeout,
            priority,
            buffer_id,
            out_port,
            out_group,
            flags,
            match_,
            instructions,
        }
    }
}

prop_compose! {
    fn group_mod()(
        command in code_u16(),
        group_type in code_u8(),
        group_id in any::<u32>(),
        buckets in vec(bucket(), 0..4),
    ) -> GroupMod<'static> {
        GroupMod {
            command: GroupModCommand::from(command),
            group_type: GroupType::from(group_type),
            group_id,
            buckets,
        }
    }
}

prop_compose! {
    fn meter_mod()(
        command in code_u16(),
        flags in any::<u16>(),
        meter_id in any::<u32>(),
        bands in vec(meter_band(), 0..5),
    ) -> MeterMod<'static> {
        MeterMod { command: MeterModCommand::from(command), flags, meter_id, bands }
    }
}

/// Messages carrying matches, actions, instructions, buckets or bands.
fn flow_message() -> impl Strategy<Value = Message<'static>> {
    prop_oneof![
        packet_in().prop_map(Message::PacketIn),
        flow_removed().prop_map(Message::FlowRemoved),
        packet_out().prop_map(Message::PacketOut),
        flow_mod().prop_map(|f| Message::FlowMod(Box::new(f))),
        group_mod().prop_map(Message::GroupMod),
        meter_mod().prop_map(Message::MeterMod),
    ]
}

// ---------------------------------------------------------------------------
// Multipart.

prop_compose! {
    fn flow_stats_request()(
        table_id in any::<u8>(),
        out_port in port_no(),
        (out_group, cookie, cookie_mask) in any::<(u32, u64, u64)>(),
        match_ in match_(),
    ) -> FlowStatsRequest<'static> {
        FlowStatsRequest { table_id, out_port, out_group, cookie, cookie_mask, match_ }
    }
}

prop_compose! {
    fn experimenter_multipart()(
        (experimenter, exp_type) in any::<(u32, u32)>(),
        data in cow(48),
    ) -> ExperimenterMultipart<'static> {
        ExperimenterMultipart { experimenter, exp_type, data }
    }
}

/// An OXM header as listed in table features: the experimenter id follows
/// exactly when the class is the experimenter class.
fn oxm_id() -> impl Strategy<Value = OxmId> {
    (
        prop_oneof![
            any::<u32>(),
            any::<u16>().prop_map(|low| 0x8000_0000 | u32::from(low)),
            any::<u16>().prop_map(|low| 0xffff_0000 | u32::from(low)),
        ],
        any::<u32>(),
    )
        .prop_map(|(header, e)| OxmId {
            header,
            experimenter: (header >> 16 == u32::from(CLASS_EXPERIMENTER)).then_some(e),
        })
}

fn instruction_id() -> impl Strategy<Value = InstructionId<'static>> {
    (code_u16(), cow(8)).prop_map(|(t, data)| InstructionId {
        instruction_type: InstructionType::from(t),
        data,
    })
}

fn action_id() -> impl Strategy<Value = ActionId<'static>> {
    (prop_oneof![0u16..32, any::<u16>()], cow(8)).prop_map(|(t, data)| ActionId {
        action_type: ActionType::from(t),
        data,
    })
}

fn is_unknown_table_prop(t: u16) -> bool {
    matches!(
        TableFeaturePropType::from(t),
        TableFeaturePropType::Unknown(_)
    )
}

fn table_feature_prop() -> impl Strategy<Value = TableFeatureProp<'static>> {
    let ids = || vec(oxm_id(), 0..4);
    prop_oneof![
        (any::<bool>(), vec(instruction_id(), 0..4)).prop_map(|(miss, instruction_ids)| {
            TableFeatureProp::Instructions {
                miss,
                instruction_ids,
            }
        }),
        (any::<bool>(), bytes(20))
            .prop_map(|(miss, table_ids)| TableFeatureProp::NextTables { miss, table_ids }),
        (any::<bool>(), vec(action_id(), 0..4))
            .prop_map(|(miss, action_ids)| TableFeatureProp::WriteActions { miss, action_ids }),
        (any::<bool>(), vec(action_id(), 0..4))
            .prop_map(|(miss, action_ids)| TableFeatureProp::ApplyActions { miss, action_ids }),
        ids().prop_map(|oxm_ids| TableFeatureProp::Match { oxm_ids }),
        ids().prop_map(|oxm_ids| TableFeatureProp::Wildcards { oxm_ids }),
        (any::<bool>(), ids())
            .prop_map(|(miss, oxm_ids)| TableFeatureProp::WriteSetfield { miss, oxm_ids }),
        (any::<bool>(), ids())
            .prop_map(|(miss, oxm_ids)| TableFeatureProp::ApplySetfield { miss, oxm_ids }),
        (any::<(bool, u32, u32)>(), cow(20)).prop_map(|((miss, experimenter, exp_type), data)| {
            TableFeatureProp::Experimenter {
                miss,
                experimenter,
                exp_type,
                data,
            }
        }),
        (unknown_u16(is_unknown_table_prop), cow(20))
            .prop_map(|(prop_type, data)| TableFeatureProp::Unknown { prop_type, data }),
    ]
}

prop_compose! {
    fn table_features()(
        table_id in any::<u8>(),
        name in any::<[u8; 32]>(),
        (metadata_match, metadata_write, config, max_entries) in any::<(u64, u64, u32, u32)>(),
        properties in vec(table_feature_prop(), 0..5),
    ) -> TableFeatures<'static> {
        TableFeatures {
            table_id,
            name: FixedStr(name),
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        }
    }
}

fn meter_request() -> impl Strategy<Value = MeterMultipartRequest> {
    any::<u32>().prop_map(|meter_id| MeterMultipartRequest { meter_id })
}

fn multipart_request() -> impl Strategy<Value = MultipartRequest<'static>> {
    use MultipartRequestBody as R;
    let body = prop_oneof![
        Just(R::Desc),
        flow_stats_request().prop_map(R::Flow),
        flow_stats_request().prop_map(R::Aggregate),
        Just(R::Table),
        port_no().prop_map(|port_no| R::PortStats(PortStatsRequest { port_no })),
        (port_no(), any::<u32>())
            .prop_map(|(port_no, queue_id)| R::Queue(QueueStatsRequest { port_no, queue_id })),
        any::<u32>().prop_map(|group_id| R::Group(GroupStatsRequest { group_id })),
        Just(R::GroupDesc),
        Just(R::GroupFeatures),
        meter_request().prop_map(R::Meter),
        meter_request().prop_map(R::MeterConfig),
        Just(R::MeterFeatures),
        vec(table_features(), 0..3).prop_map(R::TableFeatures),
        Just(R::PortDesc),
        experimenter_multipart().prop_map(R::Experimenter),
    ];
    (any::<u16>(), body).prop_map(|(flags, body)| MultipartRequest { flags, body })
}

prop_compose! {
    fn flow_stats()(
        (table_id, duration_sec, duration_nsec) in any::<(u8, u32, u32)>(),
        (priority, idle_timeout, hard_timeout, flags) in any::<(u16, u16, u16, u16)>(),
        (cookie, packet_count, byte_count) in any::<(u64, u64, u64)>(),
        match_ in match_(),
        instructions in instructions(),
    ) -> FlowStats<'static> {
        FlowStats {
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
        }
    }
}

fn fixed_str<const N: usize>() -> impl Strategy<Value = FixedStr<N>> {
    prop_oneof![
        vec(any::<u8>(), N).prop_map(|v| {
            let mut a = [0u8; N];
            a.copy_from_slice(&v);
            FixedStr(a)
        }),
        "[a-z0-9 ]{0,20}".prop_map(|s| FixedStr::new(&s)),
    ]
}

prop_compose! {
    fn desc()(
        mfr_desc in fixed_str::<256>(),
        hw_desc in fixed_str::<256>(),
        sw_desc in fixed_str::<256>(),
        serial_num in fixed_str::<32>(),
        dp_desc in fixed_str::<256>(),
    ) -> Desc {
        Desc { mfr_desc, hw_desc, sw_desc, serial_num, dp_desc }
    }
}

prop_compose! {
    fn port_stats()(
        port_no in port_no(),
        c in any::<[u64; 12]>(),
        (duration_sec, duration_nsec) in any::<(u32, u32)>(),
    ) -> PortStats {
        PortStats {
            port_no,
            rx_packets: c[0],
            tx_packets: c[1],
            rx_bytes: c[2],
            tx_bytes: c[3],
            rx_dropped: c[4],
            tx_dropped: c[5],
            rx_errors: c[6],
            tx_errors: c[7],
            rx_frame_err: c[8],
            rx_over_err: c[9],
            rx_crc_err: c[10],
            collisions: c[11],
            duration_sec,
            duration_nsec,
        }
    }
}

prop_compose! {
    fn queue_stats()(
        port_no in port_no(),
        (queue_id, tx_bytes, tx_packets, tx_errors, duration_sec, duration_nsec)
            in any::<(u32, u64, u64, u64, u32, u32)>(),
    ) -> QueueStats {
        QueueStats { port_no, queue_id, tx_bytes, tx_packets, tx_errors, duration_sec, duration_nsec }
    }
}

prop_compose! {
    fn group_stats()(
        (group_id, ref_count, packet_count, byte_count, duration_sec, duration_nsec)
            in any::<(u32, u32, u64, u64, u32, u32)>(),
        counters in vec(any::<(u64, u64)>(), 0..4),
    ) -> GroupStats {
        GroupStats {
            group_id,
            ref_count,
            packet_count,
            byte_count,
            duration_sec,
            duration_nsec,
            bucket_stats: counters
                .into_iter()
                .map(|(packet_count, byte_count)| BucketCounter { packet_count, byte_count })
                .collect(),
        }
    }
}

prop_compose! {
    fn group_desc()(
        group_type in code_u8(),
        group_id in any::<u32>(),
        buckets in vec(bucket(), 0..3),
    ) -> GroupDesc<'static> {
        GroupDesc { group_type: GroupType::from(group_type), group_id, buckets }
    }
}

prop_compose! {
    fn meter_stats()(
        (meter_id, flow_count, packet_in_count, byte_in_count, duration_sec, duration_nsec)
            in any::<(u32, u32, u64, u64, u32, u32)>(),
        bands in vec(any::<(u64, u64)>(), 0..4),
    ) -> MeterStats {
        MeterStats {
            meter_id,
            flow_count,
            packet_in_count,
            byte_in_count,
            duration_sec,
            duration_nsec,
            band_stats: bands
                .into_iter()
                .map(|(packet_band_count, byte_band_count)| MeterBandStats {
                    packet_band_count,
                    byte_band_count,
                })
                .collect(),
        }
    }
}

prop_compose! {
    fn meter_config()(
        flags in any::<u16>(),
        meter_id in any::<u32>(),
        bands in vec(meter_band(), 0..4),
    ) -> MeterConfig<'static> {
        MeterConfig { flags, meter_id, bands }
    }
}

fn multipart_reply() -> impl Strategy<Value = MultipartReply<'static>> {
    use MultipartReplyBody as R;
    let body = prop_oneof![
        desc().prop_map(|d| R::Desc(Box::new(d))),
        vec(flow_stats(), 0..3).prop_map(R::Flow),
        any::<(u64, u64, u32)>().prop_map(|(packet_count, byte_count, flow_count)| {
            R::Aggregate(AggregateStats {
                packet_count,
                byte_count,
                flow_count,
            })
        }),
        vec(any::<(u8, u32, u64, u64)>(), 0..4).prop_map(|v| R::Table(
            v.into_iter()
                .map(
                    |(table_id, active_count, lookup_count, matched_count)| TableStats {
                        table_id,
                        active_count,
                        lookup_count,
                        matched_count,
                    }
                )
                .collect()
        )),
        vec(port_stats(), 0..4).prop_map(R::PortStats),
        vec(queue_stats(), 0..4).prop_map(R::Queue),
        vec(group_stats(), 0..3).prop_map(R::Group),
        vec(group_desc(), 0..3).prop_map(R::GroupDesc),
        (any::<(u32, u32)>(), any::<[u32; 4]>(), any::<[u32; 4]>()).prop_map(
            |((types, capabilities), max_groups, actions)| R::GroupFeatures(GroupFeatures {
                types,
                capabilities,
                max_groups,
                actions,
            })
        ),
        vec(meter_stats(), 0..3).prop_map(R::Meter),
        vec(meter_config(), 0..3).prop_map(R::MeterConfig),
        any::<(u32, u32, u32, u8, u8)>().prop_map(
            |(max_meter, band_types, capabilities, max_bands, max_color)| {
                R::MeterFeatures(MeterFeatures {
                    max_meter,
                    band_types,
                    capabilities,
                    max_bands,
                    max_color,
                })
            }
        ),
        vec(table_features(), 0..3).prop_map(R::TableFeatures),
        vec(port(), 0..4).prop_map(R::PortDesc),
        experimenter_multipart().prop_map(R::Experimenter),
    ];
    (any::<u16>(), body).prop_map(|(flags, body)| MultipartReply { flags, body })
}

fn any_message() -> impl Strategy<Value = Message<'static>> {
    prop_oneof![
        simple_message(),
        flow_message(),
        multipart_request().prop_map(Message::MultipartRequest),
        multipart_reply().prop_map(Message::MultipartReply),
    ]
}

// ---------------------------------------------------------------------------
// The round-trip checks.

/// Encodes `msg` with `version`, then checks the length, the header, that
/// decoding gives `msg` back (borrowed and owned), that `to_json` gives an
/// object, and that re-encoding the decoded message gives the same bytes.
fn check_message(version: u8, xid: u32, msg: &Message<'static>) -> Result<(), TestCaseError> {
    let mut bytes = Vec::new();
    let written = encode_versioned(version, xid, msg, &mut bytes)
        .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    prop_assert_eq!(written, bytes.len());
    prop_assert_eq!(bytes.len(), msg.buffer_len());
    // The generators keep every message well inside the 16-bit length.
    prop_assert!(bytes.len() < 0xffff, "generated {} bytes", bytes.len());

    let (header, decoded) = decode(&bytes)
        .map_err(|e| TestCaseError::fail(format!("decode: {e}\nbytes: {}", hex(&bytes))))?;
    prop_assert_eq!(header.version, version);
    prop_assert_eq!(header.msg_type, msg.msg_type());
    prop_assert_eq!(usize::from(header.length), bytes.len());
    prop_assert_eq!(header.xid, xid);
    prop_assert!(to_json(&header, &decoded).is_object());

    // `Message` is invariant in its lifetime (SmallVec), so the borrowed
    // decode is compared through its owned copy.
    let owned = decoded.into_owned();
    prop_assert_eq!(&owned, msg);
    let mut again = Vec::new();
    encode_versioned(version, xid, &owned, &mut again)
        .map_err(|e| TestCaseError::fail(format!("re-encode: {e}")))?;
    prop_assert_eq!(&again, &bytes);
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Emits a structure on its own, parses it back with `$parse`, and checks
/// length, re-encoded bytes and value (through `into_owned`, as above).
macro_rules! check_part {
    ($value:expr, $parse:path) => {{
        let value = &$value;
        let mut buf = Vec::new();
        value.emit(&mut buf);
        prop_assert_eq!(buf.len(), value.buffer_len());
        let (rest, parsed) = $parse(&buf)
            .map_err(|e| TestCaseError::fail(format!("parse: {e:?}\nbytes: {}", hex(&buf))))?;
        prop_assert!(rest.is_empty(), "{} bytes left over", rest.len());
        let mut again = Vec::new();
        parsed.emit(&mut again);
        prop_assert_eq!(&again, &buf);
        prop_assert_eq!(&parsed.into_owned(), value);
    }};
}

proptest! {
    #[test]
    fn oxm_round_trips(o in oxm()) {
        check_part!(o, Oxm::parse);
    }

    #[test]
    fn match_round_trips(m in match_()) {
        check_part!(m, Match::parse);
        prop_assert_eq!(m.buffer_len() % 8, 0);
    }

    #[test]
    fn action_round_trips(a in action()) {
        check_part!(a, Action::parse);
    }

    #[test]
    fn instruction_round_trips(i in instruction()) {
        check_part!(i, Instruction::parse);
    }

    #[test]
    fn meter_band_round_trips(b in meter_band()) {
        check_part!(b, MeterBand::parse);
    }

    #[test]
    fn bucket_round_trips(b in bucket()) {
        check_part!(b, Bucket::parse);
    }

    #[test]
    fn table_features_round_trips(t in table_features()) {
        check_part!(t, TableFeatures::parse);
    }

    #[test]
    fn simple_messages_round_trip(xid in any::<u32>(), m in simple_message()) {
        check_message(openflow::OFP_VERSION, xid, &m)?;
    }

    /// HELLO is the one message accepted with any version byte.
    #[test]
    fn hello_any_version_round_trips(
        version in any::<u8>(),
        xid in any::<u32>(),
        elements in vec(hello_elem(), 0..4),
    ) {
        check_message(version, xid, &Message::Hello { elements })?;
    }

    #[test]
    fn flow_messages_round_trip(xid in any::<u32>(), m in flow_message()) {
        check_message(openflow::OFP_VERSION, xid, &m)?;
    }

    #[test]
    fn multipart_requests_round_trip(xid in any::<u32>(), m in multipart_request()) {
        check_message(openflow::OFP_VERSION, xid, &Message::MultipartRequest(m))?;
    }

    #[test]
    fn multipart_replies_round_trip(xid in any::<u32>(), m in multipart_reply()) {
        check_message(openflow::OFP_VERSION, xid, &Message::MultipartReply(m))?;
    }

    /// Any version other than 1.3 is refused on every message but HELLO.
    #[test]
    fn other_versions_are_refused(version in any::<u8>(), m in any_message()) {
        prop_assume!(version != openflow::OFP_VERSION && m.msg_type() != MsgType::Hello);
        let mut bytes = Vec::new();
        encode_versioned(version, 1, &m, &mut bytes)
            .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
        let err = decode(&bytes).err();
        prop_assert_eq!(err.map(|e| e.kind), Some(openflow::ErrorKind::BadVersion { version }));
    }
}

// ---------------------------------------------------------------------------
// The generators reach what the properties claim to cover. Deterministic:
// the runner's RNG has a fixed seed.

fn sample<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::deterministic();
    (0..n)
        .map(|_| match strategy.new_tree(&mut runner) {
            Ok(tree) => tree.current(),
            Err(e) => panic!("strategy failed to generate: {e}"),
        })
        .collect()
}

#[test]
fn generators_cover_every_basic_oxm_field_with_and_without_mask() {
    let seen: BTreeSet<(u8, bool)> = sample(basic_oxm(), 4000)
        .iter()
        .map(|o| {
            let (class, field, hasmask) = o.header_parts();
            assert_eq!(class, CLASS_OPENFLOW_BASIC);
            (field, hasmask)
        })
        .collect();
    let want: BTreeSet<(u8, bool)> = openflow::oxm::BASIC_FIELD_NAMES
        .iter()
        .flat_map(|&(id, _)| [(id, false), (id, true)])
        .collect();
    assert_eq!(want.len(), 80);
    assert_eq!(seen, want);

    let raw = sample(raw_oxm(), 500);
    assert!(raw.iter().any(|r| r.class == CLASS_EXPERIMENTER));
    assert!(raw.iter().any(|r| r.class == CLASS_OPENFLOW_BASIC));
    assert!(raw.iter().any(|r| r.payload.len() == 255));
}

#[test]
fn generators_cover_every_action_and_instruction_type() {
    let actions: BTreeSet<u16> = sample(action(), 3000)
        .iter()
        .map(|a| a.action_type().value())
        .collect();
    for t in ActionType::KNOWN {
        assert!(actions.contains(&t.value()), "action {t} never generated");
    }
    assert!(actions.iter().any(|&t| is_unknown_action(t)));

    let ins: BTreeSet<u16> = sample(instruction(), 1000)
        .iter()
        .map(|i| i.instruction_type().value())
        .collect();
    for t in InstructionType::KNOWN {
        assert!(ins.contains(&t.value()), "instruction {t} never generated");
    }
    assert!(ins.iter().any(|&t| is_unknown_instruction(t)));

    let bands: BTreeSet<u16> = sample(meter_band(), 300)
        .iter()
        .map(|b| b.band_type().value())
        .collect();
    for t in MeterBandType::KNOWN {
        assert!(bands.contains(&t.value()), "band {t} never generated");
    }
    assert!(bands.iter().any(|&t| is_unknown_band(t)));
}

#[test]
fn generators_cover_every_message_and_multipart_type() {
    let msgs = sample(any_message(), 6000);
    let types: BTreeSet<u8> = msgs.iter().map(|m| m.msg_type().value()).collect();
    for t in MsgType::KNOWN {
        assert!(types.contains(&t.value()), "message {t} never generated");
    }
    let mut requests = BTreeSet::new();
    let mut replies = BTreeSet::new();
    let mut unknown_commands = 0;
    let mut experimenter_errors = 0;
    for m in &msgs {
        match m {
            Message::MultipartRequest(r) => {
                requests.insert(r.multipart_type().value());
            }
            Message::MultipartReply(r) => {
                replies.insert(r.multipart_type().value());
            }
            Message::FlowMod(f) if matches!(f.command, FlowModCommand::Unknown(_)) => {
                unknown_commands += 1;
            }
            Message::Error(e) if e.experimenter.is_some() => experimenter_errors += 1,
            _ => {}
        }
    }
    for t in MultipartType::KNOWN {
        assert!(requests.contains(&t.value()), "request {t} never generated");
        assert!(replies.contains(&t.value()), "reply {t} never generated");
    }
    assert!(
        unknown_commands > 0,
        "no unknown FLOW_MOD command generated"
    );
    assert!(experimenter_errors > 0, "no experimenter ERROR generated");
}

#[test]
fn generators_stay_well_below_the_length_limit() {
    let longest = sample(any_message(), 2000)
        .iter()
        .map(Message::buffer_len)
        .max()
        .unwrap_or_default();
    assert!(longest < 0xffff / 2, "longest generated message: {longest}");
}
