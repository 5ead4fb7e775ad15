//! Enumerated values of OpenFlow 1.3.5: message, multipart and error types,
//! every error code, reserved ports and the smaller command/reason enums.

use crate::enum_with_unknown;

/// OpenFlow 1.3 wire version.
pub const OFP_VERSION: u8 = 0x04;
/// Length of the common header.
pub const HEADER_LEN: usize = 8;
/// `OFP_NO_BUFFER`: the packet is not buffered on the switch.
pub const NO_BUFFER: u32 = 0xffff_ffff;
/// Cookie namespace helper: `OFPG_ANY` and `OFPP_ANY` for "no filter".
pub const GROUP_ANY: u32 = 0xffff_ffff;
/// `OFPTT_ALL`: all tables.
pub const TABLE_ALL: u8 = 0xff;
/// `OFPM_ALL`: all meters.
pub const METER_ALL: u32 = 0xffff_ffff;
/// `OFPM_CONTROLLER`: the meter of the switch's packets to the controller.
pub const METER_CONTROLLER: u32 = 0xffff_fffd;
/// `OFPQ_ALL`: all queues.
pub const QUEUE_ALL: u32 = 0xffff_ffff;
/// `OFPCML_NO_BUFFER`: send the whole packet to the controller.
pub const CML_NO_BUFFER: u16 = 0xffff;

enum_with_unknown! {
    /// `ofp_type`.
    pub enum MsgType(u8) {
        Hello = 0 => "HELLO",
        Error = 1 => "ERROR",
        EchoRequest = 2 => "ECHO_REQUEST",
        EchoReply = 3 => "ECHO_REPLY",
        Experimenter = 4 => "EXPERIMENTER",
        FeaturesRequest = 5 => "FEATURES_REQUEST",
        FeaturesReply = 6 => "FEATURES_REPLY",
        GetConfigRequest = 7 => "GET_CONFIG_REQUEST",
        GetConfigReply = 8 => "GET_CONFIG_REPLY",
        SetConfig = 9 => "SET_CONFIG",
        PacketIn = 10 => "PACKET_IN",
        FlowRemoved = 11 => "FLOW_REMOVED",
        PortStatus = 12 => "PORT_STATUS",
        PacketOut = 13 => "PACKET_OUT",
        FlowMod = 14 => "FLOW_MOD",
        GroupMod = 15 => "GROUP_MOD",
        PortMod = 16 => "PORT_MOD",
        TableMod = 17 => "TABLE_MOD",
        MultipartRequest = 18 => "MULTIPART_REQUEST",
        MultipartReply = 19 => "MULTIPART_REPLY",
        BarrierRequest = 20 => "BARRIER_REQUEST",
        BarrierReply = 21 => "BARRIER_REPLY",
        QueueGetConfigRequest = 22 => "QUEUE_GET_CONFIG_REQUEST",
        QueueGetConfigReply = 23 => "QUEUE_GET_CONFIG_REPLY",
        RoleRequest = 24 => "ROLE_REQUEST",
        RoleReply = 25 => "ROLE_REPLY",
        GetAsyncRequest = 26 => "GET_ASYNC_REQUEST",
        GetAsyncReply = 27 => "GET_ASYNC_REPLY",
        SetAsync = 28 => "SET_ASYNC",
        MeterMod = 29 => "METER_MOD",
    }
}

enum_with_unknown! {
    /// `ofp_multipart_type`.
    pub enum MultipartType(u16) {
        Desc = 0 => "DESC",
        Flow = 1 => "FLOW",
        Aggregate = 2 => "AGGREGATE",
        Table = 3 => "TABLE",
        PortStats = 4 => "PORT_STATS",
        Queue = 5 => "QUEUE",
        Group = 6 => "GROUP",
        GroupDesc = 7 => "GROUP_DESC",
        GroupFeatures = 8 => "GROUP_FEATURES",
        Meter = 9 => "METER",
        MeterConfig = 10 => "METER_CONFIG",
        MeterFeatures = 11 => "METER_FEATURES",
        TableFeatures = 12 => "TABLE_FEATURES",
        PortDesc = 13 => "PORT_DESC",
        Experimenter = 0xffff => "EXPERIMENTER",
    }
}

enum_with_unknown! {
    /// `ofp_error_type`.
    pub enum ErrorType(u16) {
        HelloFailed = 0 => "HELLO_FAILED",
        BadRequest = 1 => "BAD_REQUEST",
        BadAction = 2 => "BAD_ACTION",
        BadInstruction = 3 => "BAD_INSTRUCTION",
        BadMatch = 4 => "BAD_MATCH",
        FlowModFailed = 5 => "FLOW_MOD_FAILED",
        GroupModFailed = 6 => "GROUP_MOD_FAILED",
        PortModFailed = 7 => "PORT_MOD_FAILED",
        TableModFailed = 8 => "TABLE_MOD_FAILED",
        QueueOpFailed = 9 => "QUEUE_OP_FAILED",
        SwitchConfigFailed = 10 => "SWITCH_CONFIG_FAILED",
        RoleRequestFailed = 11 => "ROLE_REQUEST_FAILED",
        MeterModFailed = 12 => "METER_MOD_FAILED",
        TableFeaturesFailed = 13 => "TABLE_FEATURES_FAILED",
        Experimenter = 0xffff => "EXPERIMENTER",
    }
}

macro_rules! codes {
    ($(#[$m:meta])* $module:ident { $($name:ident = $v:expr),+ $(,)? }) => {
        $(#[$m])*
        pub mod $module {
            $( pub const $name: u16 = $v; )+
            /// Every code of this type with its spec name.
            pub const NAMES: &[(u16, &str)] = &[ $( ($v, stringify!($name)) ),+ ];
        }
    };
}

codes!(/// `ofp_hello_failed_code`.
    hello_failed { INCOMPATIBLE = 0, EPERM = 1 });
codes!(/// `ofp_bad_request_code`.
    bad_request { BAD_VERSION = 0, BAD_TYPE = 1, BAD_MULTIPART = 2, BAD_EXPERIMENTER = 3,
    BAD_EXP_TYPE = 4, EPERM = 5, BAD_LEN = 6, BUFFER_EMPTY = 7, BUFFER_UNKNOWN = 8,
    BAD_TABLE_ID = 9, IS_SLAVE = 10, BAD_PORT = 11, BAD_PACKET = 12,
    MULTIPART_BUFFER_OVERFLOW = 13 });
codes!(/// `ofp_bad_action_code`.
    bad_action { BAD_TYPE = 0, BAD_LEN = 1, BAD_EXPERIMENTER = 2, BAD_EXP_TYPE = 3,
    BAD_OUT_PORT = 4, BAD_ARGUMENT = 5, EPERM = 6, TOO_MANY = 7, BAD_QUEUE = 8,
    BAD_OUT_GROUP = 9, MATCH_INCONSISTENT = 10, UNSUPPORTED_ORDER = 11, BAD_TAG = 12,
    BAD_SET_TYPE = 13, BAD_SET_LEN = 14, BAD_SET_ARGUMENT = 15 });
codes!(/// `ofp_bad_instruction_code`.
    bad_instruction { UNKNOWN_INST = 0, UNSUP_INST = 1, BAD_TABLE_ID = 2,
    UNSUP_METADATA = 3, UNSUP_METADATA_MASK = 4, BAD_EXPERIMENTER = 5, BAD_EXP_TYPE = 6,
    BAD_LEN = 7, EPERM = 8 });
codes!(/// `ofp_bad_match_code`.
    bad_match { BAD_TYPE = 0, BAD_LEN = 1, BAD_TAG = 2, BAD_DL_ADDR_MASK = 3,
    BAD_NW_ADDR_MASK = 4, BAD_WILDCARDS = 5, BAD_FIELD = 6, BAD_VALUE = 7, BAD_MASK = 8,
    BAD_PREREQ = 9, DUP_FIELD = 10, EPERM = 11 });
codes!(/// `ofp_flow_mod_failed_code`.
    flow_mod_failed { UNKNOWN = 0, TABLE_FULL = 1, BAD_TABLE_ID = 2, OVERLAP = 3,
    EPERM = 4, BAD_TIMEOUT = 5, BAD_COMMAND = 6, BAD_FLAGS = 7 });
codes!(/// `ofp_group_mod_failed_code`.
    group_mod_failed { GROUP_EXISTS = 0, INVALID_GROUP = 1, WEIGHT_UNSUPPORTED = 2,
    OUT_OF_GROUPS = 3, OUT_OF_BUCKETS = 4, CHAINING_UNSUPPORTED = 5, WATCH_UNSUPPORTED = 6,
    LOOP = 7, UNKNOWN_GROUP = 8, CHAINED_GROUP = 9, BAD_TYPE = 10, BAD_COMMAND = 11,
    BAD_BUCKET = 12, BAD_WATCH = 13, EPERM = 14 });
codes!(/// `ofp_port_mod_failed_code`.
    port_mod_failed { BAD_PORT = 0, BAD_HW_ADDR = 1, BAD_CONFIG = 2, BAD_ADVERTISE = 3,
    EPERM = 4 });
codes!(/// `ofp_table_mod_failed_code`.
    table_mod_failed { BAD_TABLE = 0, BAD_CONFIG = 1, EPERM = 2 });
codes!(/// `ofp_queue_op_failed_code`.
    queue_op_failed { BAD_PORT = 0, BAD_QUEUE = 1, EPERM = 2 });
codes!(/// `ofp_switch_config_failed_code`.
    switch_config_failed { BAD_FLAGS = 0, BAD_LEN = 1, EPERM = 2 });
codes!(/// `ofp_role_request_failed_code`.
    role_request_failed { STALE = 0, UNSUP = 1, BAD_ROLE = 2 });
codes!(/// `ofp_meter_mod_failed_code`.
    meter_mod_failed { UNKNOWN = 0, METER_EXISTS = 1, INVALID_METER = 2,
    UNKNOWN_METER = 3, BAD_COMMAND = 4, BAD_FLAGS = 5, BAD_RATE = 6, BAD_BURST = 7,
    BAD_BAND = 8, BAD_BAND_VALUE = 9, OUT_OF_METERS = 10, OUT_OF_BANDS = 11 });
codes!(/// `ofp_table_features_failed_code`.
    table_features_failed { BAD_TABLE = 0, BAD_METADATA = 1, BAD_TYPE = 2, BAD_LEN = 3,
    BAD_ARGUMENT = 4, EPERM = 5 });

impl ErrorType {
    /// The spec name of `code` under this error type, if known.
    pub fn code_name(&self, code: u16) -> Option<&'static str> {
        let names: &[(u16, &str)] = match self {
            ErrorType::HelloFailed => hello_failed::NAMES,
            ErrorType::BadRequest => bad_request::NAMES,
            ErrorType::BadAction => bad_action::NAMES,
            ErrorType::BadInstruction => bad_instruction::NAMES,
            ErrorType::BadMatch => bad_match::NAMES,
            ErrorType::FlowModFailed => flow_mod_failed::NAMES,
            ErrorType::GroupModFailed => group_mod_failed::NAMES,
            ErrorType::PortModFailed => port_mod_failed::NAMES,
            ErrorType::TableModFailed => table_mod_failed::NAMES,
            ErrorType::QueueOpFailed => queue_op_failed::NAMES,
            ErrorType::SwitchConfigFailed => switch_config_failed::NAMES,
            ErrorType::RoleRequestFailed => role_request_failed::NAMES,
            ErrorType::MeterModFailed => meter_mod_failed::NAMES,
            ErrorType::TableFeaturesFailed => table_features_failed::NAMES,
            ErrorType::Experimenter | ErrorType::Unknown(_) => &[],
        };
        names.iter().find(|(v, _)| *v == code).map(|(_, n)| *n)
    }
}

enum_with_unknown! {
    /// Port numbers, with the reserved `ofp_port_no` values named.
    pub enum PortNo(u32) {
        Max = 0xffff_ff00 => "MAX",
        InPort = 0xffff_fff8 => "IN_PORT",
        Table = 0xffff_fff9 => "TABLE",
        Normal = 0xffff_fffa => "NORMAL",
        Flood = 0xffff_fffb => "FLOOD",
        All = 0xffff_fffc => "ALL",
        Controller = 0xffff_fffd => "CONTROLLER",
        Local = 0xffff_fffe => "LOCAL",
        Any = 0xffff_ffff => "ANY",
    }
}

impl PortNo {
    /// A physical or logical port number (not reserved).
    pub fn port(n: u32) -> Self {
        PortNo::from(n)
    }
}

enum_with_unknown! {
    /// `ofp_flow_mod_command`.
    pub enum FlowModCommand(u8) {
        Add = 0 => "ADD",
        Modify = 1 => "MODIFY",
        ModifyStrict = 2 => "MODIFY_STRICT",
        Delete = 3 => "DELETE",
        DeleteStrict = 4 => "DELETE_STRICT",
    }
}

enum_with_unknown! {
    /// `ofp_group_mod_command`.
    pub enum GroupModCommand(u16) {
        Add = 0 => "ADD",
        Modify = 1 => "MODIFY",
        Delete = 2 => "DELETE",
    }
}

enum_with_unknown! {
    /// `ofp_group_type`.
    pub enum GroupType(u8) {
        All = 0 => "ALL",
        Select = 1 => "SELECT",
        Indirect = 2 => "INDIRECT",
        FastFailover = 3 => "FF",
    }
}

enum_with_unknown! {
    /// `ofp_meter_mod_command`.
    pub enum MeterModCommand(u16) {
        Add = 0 => "ADD",
        Modify = 1 => "MODIFY",
        Delete = 2 => "DELETE",
    }
}

enum_with_unknown! {
    /// `ofp_packet_in_reason`.
    pub enum PacketInReason(u8) {
        NoMatch = 0 => "NO_MATCH",
        Action = 1 => "ACTION",
        InvalidTtl = 2 => "INVALID_TTL",
    }
}

enum_with_unknown! {
    /// `ofp_flow_removed_reason`.
    pub enum FlowRemovedReason(u8) {
        IdleTimeout = 0 => "IDLE_TIMEOUT",
        HardTimeout = 1 => "HARD_TIMEOUT",
        Delete = 2 => "DELETE",
        GroupDelete = 3 => "GROUP_DELETE",
    }
}

enum_with_unknown! {
    /// `ofp_port_reason`.
    pub enum PortReason(u8) {
        Add = 0 => "ADD",
        Delete = 1 => "DELETE",
        Modify = 2 => "MODIFY",
    }
}

enum_with_unknown! {
    /// `ofp_controller_role`.
    pub enum ControllerRole(u32) {
        NoChange = 0 => "NOCHANGE",
        Equal = 1 => "EQUAL",
        Master = 2 => "MASTER",
        Slave = 3 => "SLAVE",
    }
}

/// `ofp_flow_mod_flags` bits.
pub mod flow_mod_flags {
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    pub const RESET_COUNTS: u16 = 1 << 2;
    pub const NO_PKT_COUNTS: u16 = 1 << 3;
    pub const NO_BYT_COUNTS: u16 = 1 << 4;
}

/// `ofp_meter_flags` bits.
pub mod meter_flags {
    pub const KBPS: u16 = 1 << 0;
    pub const PKTPS: u16 = 1 << 1;
    pub const BURST: u16 = 1 << 2;
    pub const STATS: u16 = 1 << 3;
}

/// `ofp_multipart_request_flags` / `ofp_multipart_reply_flags`.
pub const MULTIPART_MORE: u16 = 1;
