//! Why a session ends, and the close code that says it on the wire (docs/sessions.md §6).

/// Why a session was lost: the `<reason>` of `\0lost <reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LostReason {
    /// The resume came after the server's resume window.
    Expired,
    /// The server does not know the id (restart, long forgotten, forged).
    Unknown,
    /// A sender had to drop an unacknowledged message.
    Overflow,
    /// The server dropped the parked session to stay within its total bounds, or a count
    /// reached its limit.
    Limit,
    /// A peer broke a rule of the protocol.
    Protocol,
    /// The session was resumed on another connection.
    Replaced,
}

impl LostReason {
    /// Every reason, in the order of the protocol's table.
    pub const ALL: [LostReason; 6] = [
        LostReason::Expired,
        LostReason::Unknown,
        LostReason::Overflow,
        LostReason::Limit,
        LostReason::Protocol,
        LostReason::Replaced,
    ];

    /// The word on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LostReason::Expired => "expired",
            LostReason::Unknown => "unknown",
            LostReason::Overflow => "overflow",
            LostReason::Limit => "limit",
            LostReason::Protocol => "protocol",
            LostReason::Replaced => "replaced",
        }
    }

    /// The reason a wire word names.
    pub fn from_word(word: &str) -> Option<LostReason> {
        LostReason::ALL.into_iter().find(|r| r.as_str() == word)
    }

    /// The close code sent after `\0lost <reason>`: private-use codes (RFC 6455 §7.4.2)
    /// 4001-4006, except `protocol`, which is the RFC's 1002.
    pub fn close_code(self) -> u16 {
        match self {
            LostReason::Expired => 0x0FA1,
            LostReason::Unknown => 0x0FA2,
            LostReason::Overflow => 0x0FA3,
            LostReason::Limit => 0x0FA4,
            LostReason::Protocol => 0x03EA,
            LostReason::Replaced => 0x0FA6,
        }
    }

    /// The reason a close code alone says, when the connection closed without a `lost`
    /// message: 4001-4006 and 1002 (4005 is `protocol` from a browser, which cannot send 1002).
    pub fn from_close_code(code: u16) -> Option<LostReason> {
        match code {
            0x0FA5 | 0x03EA => Some(LostReason::Protocol),
            _ => LostReason::ALL.into_iter().find(|r| r.close_code() == code),
        }
    }
}

impl std::fmt::Display for LostReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_codes_round_trip() {
        for reason in LostReason::ALL {
            assert_eq!(LostReason::from_word(reason.as_str()), Some(reason));
            assert_eq!(
                LostReason::from_close_code(reason.close_code()),
                Some(reason)
            );
        }
        assert_eq!(LostReason::Expired.close_code(), 4001);
        assert_eq!(LostReason::Replaced.close_code(), 4006);
        assert_eq!(
            LostReason::from_close_code(4005),
            Some(LostReason::Protocol)
        );
        assert_eq!(LostReason::from_close_code(1000), None);
        assert_eq!(LostReason::from_close_code(4000), None);
        assert_eq!(LostReason::from_word("Expired"), None);
    }
}
