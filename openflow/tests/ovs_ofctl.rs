//! Cross-checks the encoder against Open vSwitch's own OpenFlow decoder:
//! messages the controller sends are encoded with `openflow::to_vec`, handed
//! to `ovs-ofctl ofp-print <hex>`, and OVS's reading is checked (message
//! type, match fields, instructions, actions, meter bands, multipart type...).
//! Every message must decode in OVS without any complaint. `ovs-ofctl` must
//! be installed (`bash scripts/setup.sh`): without it these tests fail.

use openflow::consts::{
    ControllerRole, ErrorType, FlowModCommand, GroupModCommand, GroupType, MeterModCommand,
    NO_BUFFER, PortNo, bad_request, flow_mod_flags, meter_flags,
};
use openflow::multipart::{
    FlowStatsRequest, GroupStatsRequest, MeterMultipartRequest, MultipartRequestBody,
    PortStatsRequest, QueueStatsRequest,
};
use openflow::{
    Action, AsyncConfig, Bucket, ErrorMsg, FlowMod, GroupMod, HelloElem, Instruction, MacAddr,
    Match, Message, MeterBand, MeterMod, MultipartRequest, Oxm, PacketOut, PortMod, Role,
    SwitchConfig, TableMod, to_vec,
};
use smallvec::smallvec;
use std::borrow::Cow;
use std::net::Ipv4Addr;
use std::process::Command;

// ---------------------------------------------------------------------------
// Running ovs-ofctl.

/// Words that only appear in ovs-ofctl's output when it could not make sense
/// of a message (`***decode error: OFPBRC_BAD_LEN***`, WARN log lines, ...).
const COMPLAINTS: &[&str] = &[
    "decode error",
    "***",
    "bad",
    "invalid",
    "unknown",
    "truncat",
    "warn",
];

/// Encodes `msg`, runs `ovs-ofctl ofp-print` on its hex, checks that OVS
/// decoded it without complaint and returns what OVS printed.
fn ofp_print(xid: u32, msg: &Message<'_>) -> String {
    let bytes = to_vec(xid, msg).expect("encodes");
    let hex = hex::encode(&bytes);
    let out = match Command::new("ovs-ofctl")
        .arg("ofp-print")
        .arg(&hex)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run `ovs-ofctl` ({e}): these tests need Open vSwitch's ovs-ofctl; \
             run `bash scripts/setup.sh`"
        ),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let text = format!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "ovs-ofctl ofp-print {hex} exited with {}:\n{text}",
        out.status
    );
    // OVS reports length and field problems as log lines on stderr while
    // still printing (and exiting 0), so silence there is part of the check.
    assert!(
        stderr.is_empty(),
        "ovs-ofctl ofp-print {hex} complained on stderr:\n{text}"
    );
    let lower = text.to_lowercase();
    for word in COMPLAINTS {
        assert!(
            !lower.contains(word),
            "ovs-ofctl ofp-print {hex} output contains {word:?}:\n{text}"
        );
    }
    text
}

#[track_caller]
fn assert_has(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(
            text.contains(n),
            "expected {n:?} in ovs-ofctl's output:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------
// The messages.

fn mp(body: MultipartRequestBody<'static>) -> Message<'static> {
    Message::MultipartRequest(MultipartRequest { flags: 0, body })
}

/// The flow a tier installs for a SIP session: meter, DSCP EF, queue, output.
fn tier_flow_mod() -> Message<'static> {
    Message::from(FlowMod {
        cookie: 0x5449_4552_0000_0001,
        priority: 1000,
        idle_timeout: 30,
        flags: flow_mod_flags::SEND_FLOW_REM,
        match_: Match::new()
            .with(Oxm::InPort(PortNo::port(1), None))
            .with(Oxm::EthType(0x0800, None))
            .with(Oxm::IpProto(17, None))
            .with(Oxm::Ipv4Src(Ipv4Addr::new(10, 0, 0, 1), None))
            .with(Oxm::UdpDst(5060, None)),
        instructions: smallvec![
            Instruction::Meter { meter_id: 7 },
            Instruction::ApplyActions {
                actions: smallvec![
                    Action::SetField {
                        field: Oxm::IpDscp(46, None),
                    },
                    Action::SetQueue { queue_id: 1 },
                    Action::output(2),
                ],
            },
        ],
        ..FlowMod::default()
    })
}

/// Masked and VLAN fields, and every other instruction type, so that OVS
/// checks the encoding of each.
fn rich_flow_mod() -> Message<'static> {
    Message::from(FlowMod {
        table_id: 1,
        priority: 10,
        hard_timeout: 60,
        match_: Match::new()
            .with(Oxm::InPort(PortNo::port(1), None))
            .with(Oxm::EthDst(MacAddr([0, 0, 0, 0, 0, 2]), None))
            .with(Oxm::EthType(0x0800, None))
            .with(Oxm::VlanVid(0x1000 | 10, None))
            .with(Oxm::IpProto(6, None))
            .with(Oxm::Ipv4Dst(
                Ipv4Addr::new(10, 0, 1, 0),
                Some(Ipv4Addr::new(255, 255, 255, 0)),
            ))
            .with(Oxm::TcpDst(80, None)),
        instructions: smallvec![
            Instruction::ApplyActions {
                actions: smallvec![
                    Action::DecNwTtl,
                    Action::SetField {
                        field: Oxm::EthSrc(MacAddr([0, 0, 0, 0, 0, 0x0a]), None),
                    },
                    Action::PushVlan { ethertype: 0x8100 },
                    Action::SetField {
                        field: Oxm::VlanVid(0x1000 | 20, None),
                    },
                    Action::Group { group_id: 1 },
                ],
            },
            Instruction::ClearActions,
            Instruction::WriteActions {
                actions: smallvec![Action::Output {
                    port: PortNo::Controller,
                    max_len: 0xffff,
                }],
            },
            Instruction::WriteMetadata {
                metadata: 1,
                metadata_mask: 0xff,
            },
            Instruction::GotoTable { table_id: 2 },
        ],
        ..FlowMod::default()
    })
}

fn delete_flow_mod() -> Message<'static> {
    Message::from(FlowMod {
        cookie: 0x5449_4552_0000_0000,
        cookie_mask: 0xffff_ffff_0000_0000,
        table_id: openflow::consts::TABLE_ALL,
        command: FlowModCommand::Delete,
        ..FlowMod::default()
    })
}

fn meter_mod_drop() -> Message<'static> {
    Message::MeterMod(MeterMod {
        command: MeterModCommand::Add,
        flags: meter_flags::KBPS | meter_flags::BURST,
        meter_id: 7,
        bands: vec![MeterBand::Drop {
            rate: 50_000,
            burst_size: 5_000,
        }],
    })
}

fn meter_mod_remark() -> Message<'static> {
    Message::MeterMod(MeterMod {
        command: MeterModCommand::Modify,
        flags: meter_flags::KBPS,
        meter_id: 8,
        bands: vec![MeterBand::DscpRemark {
            rate: 10_000,
            burst_size: 0,
            prec_level: 1,
        }],
    })
}

/// A broadcast ARP request "who has 10.0.0.2, tell 10.0.0.1".
const ARP_FRAME: [u8; 42] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, //
    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x01, //
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x02, //
];

fn packet_out() -> Message<'static> {
    Message::PacketOut(PacketOut {
        buffer_id: NO_BUFFER,
        in_port: PortNo::Controller,
        actions: smallvec![Action::output(3)],
        data: Cow::Borrowed(&ARP_FRAME),
    })
}

fn select_group_mod() -> Message<'static> {
    let bucket = |weight, port| Bucket {
        weight,
        watch_port: PortNo::Any,
        watch_group: openflow::consts::GROUP_ANY,
        actions: smallvec![Action::output(port)],
    };
    Message::GroupMod(GroupMod {
        command: GroupModCommand::Add,
        group_type: GroupType::Select,
        group_id: 1,
        buckets: vec![bucket(70, 1), bucket(30, 2)],
    })
}

fn port_mod() -> Message<'static> {
    Message::PortMod(PortMod {
        port_no: PortNo::port(1),
        hw_addr: MacAddr([0, 0, 0, 0, 0, 1]),
        config: openflow::port::config::NO_PACKET_IN,
        mask: openflow::port::config::NO_PACKET_IN | openflow::port::config::PORT_DOWN,
        advertise: 0,
    })
}

fn table_mod() -> Message<'static> {
    Message::TableMod(TableMod {
        table_id: 0,
        config: 0,
    })
}

fn role_request() -> Message<'static> {
    Message::RoleRequest(Role {
        role: ControllerRole::Master,
        generation_id: 1,
    })
}

fn set_async() -> Message<'static> {
    Message::SetAsync(AsyncConfig {
        // master: PACKET_IN for NO_MATCH and ACTION; all port status; all
        // flow-removed reasons. slave: port status only.
        packet_in_mask: [0b11, 0],
        port_status_mask: [0b111, 0b111],
        flow_removed_mask: [0b1111, 0],
    })
}

fn flow_stats_all() -> Message<'static> {
    mp(MultipartRequestBody::Flow(FlowStatsRequest {
        table_id: openflow::consts::TABLE_ALL,
        out_port: PortNo::Any,
        out_group: openflow::consts::GROUP_ANY,
        cookie: 0x5449_4552_0000_0000,
        cookie_mask: 0xffff_ffff_0000_0000,
        match_: Match::new(),
    }))
}

/// Filters set to non-wildcard values so their positions are visible to OVS
/// (it prints only filters that are not "any").
fn flow_stats_filtered() -> Message<'static> {
    mp(MultipartRequestBody::Flow(FlowStatsRequest {
        table_id: 3,
        out_port: PortNo::port(2),
        out_group: openflow::consts::GROUP_ANY,
        cookie: 0x5449_4552_0000_0000,
        cookie_mask: 0xffff_ffff_0000_0000,
        match_: Match::new()
            .with(Oxm::EthType(0x0800, None))
            .with(Oxm::Ipv4Src(Ipv4Addr::new(10, 0, 0, 1), None)),
    }))
}

/// Every message checked here with the first line OVS must print for it.
fn all_messages() -> Vec<(Message<'static>, &'static str)> {
    vec![
        (tier_flow_mod(), "OFPT_FLOW_MOD (OF1.3)"),
        (rich_flow_mod(), "OFPT_FLOW_MOD (OF1.3)"),
        (delete_flow_mod(), "OFPT_FLOW_MOD (OF1.3)"),
        (meter_mod_drop(), "OFPT_METER_MOD (OF1.3)"),
        (meter_mod_remark(), "OFPT_METER_MOD (OF1.3)"),
        (packet_out(), "OFPT_PACKET_OUT (OF1.3)"),
        (Message::BarrierRequest, "OFPT_BARRIER_REQUEST (OF1.3)"),
        (
            Message::Hello {
                elements: vec![HelloElem::of13_only()],
            },
            "OFPT_HELLO (OF1.3)",
        ),
        (Message::FeaturesRequest, "OFPT_FEATURES_REQUEST (OF1.3)"),
        (Message::GetConfigRequest, "OFPT_GET_CONFIG_REQUEST (OF1.3)"),
        (
            Message::SetConfig(SwitchConfig {
                flags: 0,
                miss_send_len: openflow::consts::CML_NO_BUFFER,
            }),
            "OFPT_SET_CONFIG (OF1.3)",
        ),
        (
            Message::EchoRequest {
                data: Cow::Borrowed(b"tier"),
            },
            "OFPT_ECHO_REQUEST (OF1.3)",
        ),
        (
            Message::EchoReply {
                data: Cow::Borrowed(b"tier"),
            },
            "OFPT_ECHO_REPLY (OF1.3)",
        ),
        (
            Message::QueueGetConfigRequest {
                port: PortNo::port(1),
            },
            "OFPT_QUEUE_GET_CONFIG_REQUEST (OF1.3)",
        ),
        (Message::GetAsyncRequest, "OFPT_GET_ASYNC_REQUEST (OF1.3)"),
        (select_group_mod(), "OFPT_GROUP_MOD (OF1.3)"),
        (port_mod(), "OFPT_PORT_MOD (OF1.3)"),
        (table_mod(), "OFPT_TABLE_MOD (OF1.3)"),
        (role_request(), "OFPT_ROLE_REQUEST (OF1.3)"),
        (set_async(), "OFPT_SET_ASYNC (OF1.3)"),
        (
            mp(MultipartRequestBody::PortDesc),
            "OFPST_PORT_DESC request (OF1.3)",
        ),
        (mp(MultipartRequestBody::Desc), "OFPST_DESC request (OF1.3)"),
        (
            mp(MultipartRequestBody::MeterFeatures),
            "OFPST_METER_FEATURES request (OF1.3)",
        ),
        (flow_stats_all(), "OFPST_FLOW request (OF1.3)"),
        (flow_stats_filtered(), "OFPST_FLOW request (OF1.3)"),
        (
            mp(MultipartRequestBody::Aggregate(FlowStatsRequest {
                table_id: openflow::consts::TABLE_ALL,
                out_port: PortNo::Any,
                out_group: openflow::consts::GROUP_ANY,
                cookie: 0,
                cookie_mask: 0,
                match_: Match::new(),
            })),
            "OFPST_AGGREGATE request (OF1.3)",
        ),
        (
            mp(MultipartRequestBody::MeterConfig(MeterMultipartRequest {
                meter_id: openflow::consts::METER_ALL,
            })),
            "OFPST_METER_CONFIG request (OF1.3)",
        ),
        (
            mp(MultipartRequestBody::Meter(MeterMultipartRequest {
                meter_id: openflow::consts::METER_ALL,
            })),
            "OFPST_METER request (OF1.3)",
        ),
        (
            mp(MultipartRequestBody::Queue(QueueStatsRequest {
                port_no: PortNo::Any,
                queue_id: openflow::consts::QUEUE_ALL,
            })),
            "OFPST_QUEUE request (OF1.3)",
        ),
        (
            mp(MultipartRequestBody::PortStats(PortStatsRequest {
                port_no: PortNo::Any,
            })),
            "OFPST_PORT request (OF1.3)",
        ),
        (
            mp(MultipartRequestBody::Group(GroupStatsRequest {
                group_id: 0xffff_fffc,
            })),
            "OFPST_GROUP request (OF1.3)",
        ),
        (
            mp(MultipartRequestBody::GroupDesc),
            "OFPST_GROUP_DESC request (OF1.3)",
        ),
        (
            mp(MultipartRequestBody::GroupFeatures),
            "OFPST_GROUP_FEATURES request (OF1.3)",
        ),
        (
            mp(MultipartRequestBody::Table),
            "OFPST_TABLE request (OF1.3)",
        ),
        (
            mp(MultipartRequestBody::TableFeatures(Vec::new())),
            "OFPST_TABLE_FEATURES request (OF1.3)",
        ),
    ]
}

// ---------------------------------------------------------------------------
// Every message: OVS decodes it, as the type it is, with no complaint.

#[test]
fn every_message_decodes_cleanly_in_ovs() {
    let messages = all_messages();
    for (i, (msg, first_line)) in messages.iter().enumerate() {
        let xid = 0x100 + i as u32;
        let text = ofp_print(xid, msg);
        let expected = format!("{first_line} (xid={xid:#x}):");
        assert!(
            text.starts_with(&expected),
            "message {i}: expected ovs-ofctl output to start with {expected:?}:\n{text}"
        );
    }
    println!("ovs-ofctl decoded {} messages cleanly", messages.len());
}

// ---------------------------------------------------------------------------
// What OVS reads in each of them.

#[test]
fn tier_flow_mod_in_ovs() {
    let text = ofp_print(1, &tier_flow_mod());
    assert_has(
        &text,
        &[
            "OFPT_FLOW_MOD (OF1.3) (xid=0x1): ADD ",
            "priority=1000",
            // eth_type 0x0800 + ip_proto 17 print as "udp".
            ",udp,",
            "in_port=1",
            "nw_src=10.0.0.1",
            "tp_dst=5060",
            "cookie:0x5449455200000001",
            "idle:30",
            "send_flow_rem",
            "actions=meter:7,set_field:46->ip_dscp,set_queue:1,output:2",
        ],
    );
}

#[test]
fn rich_flow_mod_in_ovs() {
    let text = ofp_print(2, &rich_flow_mod());
    assert_has(
        &text,
        &[
            "ADD table:1 priority=10,tcp,",
            "in_port=1",
            "dl_vlan=10",
            "dl_dst=00:00:00:00:00:02",
            "nw_dst=10.0.1.0/24",
            "tp_dst=80",
            "hard:60",
            // 4116 = OFPVID_PRESENT | 20.
            "actions=dec_ttl,set_field:00:00:00:00:00:0a->eth_src,push_vlan:0x8100,\
             set_field:4116->vlan_vid,group:1,clear_actions,write_actions(CONTROLLER:65535),\
             write_metadata:0x1/0xff,goto_table:2",
        ],
    );
}

#[test]
fn delete_flow_mod_in_ovs() {
    let text = ofp_print(3, &delete_flow_mod());
    assert_has(
        &text,
        &[
            "OFPT_FLOW_MOD (OF1.3) (xid=0x3): DEL ",
            "table:255",
            "cookie:0x5449455200000000/0xffffffff00000000",
        ],
    );
    // out_port and out_group ANY are "no filter": OVS prints them only otherwise.
    assert!(!text.contains("out_port"), "{text}");
    assert!(!text.contains("out_group"), "{text}");
}

#[test]
fn meter_mod_drop_in_ovs() {
    let text = ofp_print(4, &meter_mod_drop());
    assert_has(
        &text,
        &[
            "OFPT_METER_MOD (OF1.3) (xid=0x4): ADD meter=7 kbps burst bands=",
            "type=drop rate=50000 burst_size=5000",
        ],
    );
}

#[test]
fn meter_mod_remark_in_ovs() {
    let text = ofp_print(5, &meter_mod_remark());
    assert_has(
        &text,
        &[
            "MOD meter=8 kbps bands=",
            "type=dscp_remark rate=10000 prec_level=1",
        ],
    );
    // No BURST flag: OVS prints no burst keyword and no burst size.
    assert!(!text.contains("burst"), "{text}");
}

#[test]
fn packet_out_in_ovs() {
    let text = ofp_print(6, &packet_out());
    assert_has(
        &text,
        &[
            "OFPT_PACKET_OUT (OF1.3) (xid=0x6): in_port=CONTROLLER actions=output:3 data_len=42",
            // OVS parsed the frame itself.
            "arp,",
            "dl_src=00:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff",
            "arp_spa=10.0.0.1,arp_tpa=10.0.0.2,arp_op=1",
        ],
    );
    assert!(!text.contains("buffer="), "NO_BUFFER must not show: {text}");
}

#[test]
fn hello_in_ovs() {
    let text = ofp_print(
        7,
        &Message::Hello {
            elements: vec![HelloElem::of13_only()],
        },
    );
    // OVS lists the versions of the bitmap: only 0x04.
    assert_has(
        &text,
        &["OFPT_HELLO (OF1.3) (xid=0x7):", "version bitmap: 0x04\n"],
    );
}

#[test]
fn barrier_and_features_in_ovs() {
    let text = ofp_print(8, &Message::BarrierRequest);
    assert_eq!(text.trim_end(), "OFPT_BARRIER_REQUEST (OF1.3) (xid=0x8):");
    let text = ofp_print(9, &Message::FeaturesRequest);
    assert_eq!(text.trim_end(), "OFPT_FEATURES_REQUEST (OF1.3) (xid=0x9):");
}

#[test]
fn set_config_in_ovs() {
    let msg = Message::SetConfig(SwitchConfig {
        flags: 0,
        miss_send_len: openflow::consts::CML_NO_BUFFER,
    });
    let text = ofp_print(10, &msg);
    assert_has(
        &text,
        &["OFPT_SET_CONFIG (OF1.3) (xid=0xa): frags=normal miss_send_len=65535"],
    );
}

#[test]
fn echo_in_ovs() {
    let text = ofp_print(
        11,
        &Message::EchoRequest {
            data: Cow::Borrowed(b"tier"),
        },
    );
    assert_has(&text, &["OFPT_ECHO_REQUEST", "4 bytes of payload", "|tier"]);
}

#[test]
fn error_in_ovs() {
    // An error the controller could send back, carrying the offending message.
    let barrier = to_vec(0x0c, &Message::BarrierRequest).expect("encodes");
    let msg = Message::Error(ErrorMsg::new(
        ErrorType::BadRequest,
        bad_request::IS_SLAVE,
        &barrier,
    ));
    let text = ofp_print(0x0c, &msg);
    // OVS 3.1 renamed IS_SLAVE to IS_SECONDARY; same code (10).
    assert_has(
        &text,
        &[
            "OFPT_ERROR (OF1.3) (xid=0xc): OFPBRC_IS_SECONDARY",
            "OFPT_BARRIER_REQUEST (OF1.3) (xid=0xc):",
        ],
    );
}

#[test]
fn group_mod_in_ovs() {
    let text = ofp_print(13, &select_group_mod());
    assert_has(
        &text,
        &[
            "OFPT_GROUP_MOD (OF1.3) (xid=0xd):",
            "ADD group_id=1,type=select,\
             bucket=weight:70,actions=output:1,bucket=weight:30,actions=output:2",
        ],
    );
}

#[test]
fn port_mod_in_ovs() {
    let text = ofp_print(14, &port_mod());
    assert_has(
        &text,
        &[
            "OFPT_PORT_MOD (OF1.3) (xid=0xe): port: 1: addr:00:00:00:00:00:01",
            "config: NO_PACKET_IN\n",
            "mask:   PORT_DOWN NO_PACKET_IN\n",
            "advertise: UNCHANGED",
        ],
    );
}

#[test]
fn table_mod_in_ovs() {
    let text = ofp_print(15, &table_mod());
    assert_has(&text, &["OFPT_TABLE_MOD (OF1.3) (xid=0xf): table_id=0"]);
}

#[test]
fn role_request_in_ovs() {
    let text = ofp_print(16, &role_request());
    // OVS 3.1 says "primary" for OFPCR_ROLE_MASTER.
    assert_has(
        &text,
        &["OFPT_ROLE_REQUEST (OF1.3) (xid=0x10): role=primary generation_id=1"],
    );
}

#[test]
fn set_async_in_ovs() {
    let text = ofp_print(17, &set_async());
    let (primary, secondary) = text
        .split_once(" secondary:")
        .expect("OVS prints a primary and a secondary section");
    assert_has(
        primary,
        &[
            "OFPT_SET_ASYNC (OF1.3) (xid=0x11):",
            "PACKET_IN: no_match action\n",
            "PORT_STATUS: add delete modify\n",
            "FLOW_REMOVED: idle hard delete group_delete\n",
        ],
    );
    assert_has(
        secondary,
        &[
            "PACKET_IN: (off)\n",
            "PORT_STATUS: add delete modify\n",
            "FLOW_REMOVED: (off)\n",
        ],
    );
}

#[test]
fn multipart_requests_in_ovs() {
    let cases: Vec<(Message<'static>, &str)> = vec![
        (
            mp(MultipartRequestBody::PortDesc),
            "OFPST_PORT_DESC request (OF1.3) (xid=0x20): port=ANY",
        ),
        (
            mp(MultipartRequestBody::Desc),
            "OFPST_DESC request (OF1.3) (xid=0x21):",
        ),
        (
            mp(MultipartRequestBody::MeterFeatures),
            "OFPST_METER_FEATURES request (OF1.3) (xid=0x22):",
        ),
        (
            mp(MultipartRequestBody::MeterConfig(MeterMultipartRequest {
                meter_id: openflow::consts::METER_ALL,
            })),
            "OFPST_METER_CONFIG request (OF1.3) (xid=0x23): meter=all",
        ),
        (
            mp(MultipartRequestBody::Queue(QueueStatsRequest {
                port_no: PortNo::Any,
                queue_id: openflow::consts::QUEUE_ALL,
            })),
            "OFPST_QUEUE request (OF1.3) (xid=0x24): port=ANY queue=ALL",
        ),
        (
            mp(MultipartRequestBody::PortStats(PortStatsRequest {
                port_no: PortNo::Any,
            })),
            "OFPST_PORT request (OF1.3) (xid=0x25): port_no=ANY",
        ),
        (
            mp(MultipartRequestBody::Queue(QueueStatsRequest {
                port_no: PortNo::port(2),
                queue_id: 1,
            })),
            "OFPST_QUEUE request (OF1.3) (xid=0x26): port=2 queue=1",
        ),
        (
            mp(MultipartRequestBody::Meter(MeterMultipartRequest {
                meter_id: 7,
            })),
            "OFPST_METER request (OF1.3) (xid=0x27): meter=7",
        ),
    ];
    for (i, (msg, expected)) in cases.iter().enumerate() {
        let text = ofp_print(0x20 + i as u32, msg);
        assert_eq!(text.trim_end(), *expected);
    }
}

#[test]
fn flow_stats_requests_in_ovs() {
    let text = ofp_print(0x30, &flow_stats_all());
    // table ALL, out_port ANY and an empty match print as no filter at all
    // (OVS does not print the cookie filter of a stats request).
    assert_eq!(text.trim_end(), "OFPST_FLOW request (OF1.3) (xid=0x30):");

    let text = ofp_print(0x31, &flow_stats_filtered());
    assert_eq!(
        text.trim_end(),
        "OFPST_FLOW request (OF1.3) (xid=0x31): table=3 out_port=2 ip,nw_src=10.0.0.1"
    );
}
