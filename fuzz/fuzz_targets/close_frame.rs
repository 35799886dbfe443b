//! `CloseFrame::decode`, the close frame body parser (RFC 6455 §5.5.1, §7.4): the input is the
//! unmasked payload of a received close frame.
//!
//! Checked besides "no panic": an empty body is "no code"; a decoded frame has a code that
//! may go on the wire and encodes back to the same bytes, and (for a body that fits a control
//! frame) `CloseFrame::new` accepts it; every error is a peer violation with close code 1002
//! or 1007.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tether_codec::{CloseCode, CloseFrame};

fuzz_target!(|payload: &[u8]| {
    match CloseFrame::decode(Bytes::copy_from_slice(payload)) {
        Ok(None) => assert!(payload.is_empty()),
        Ok(Some(frame)) => {
            assert!(frame.code.is_sendable());
            assert_eq!(&frame.to_payload()[..], payload);
            assert_eq!(frame.reason.as_bytes(), &payload[2..]);
            if payload.len() <= 125 {
                let again = CloseFrame::new(frame.code, frame.reason.clone())
                    .expect("a received close body can be sent back");
                assert_eq!(again, frame);
            }
        }
        Err(err) => {
            let code = err.close_code();
            assert!(
                code == Some(CloseCode::PROTOCOL_ERROR) || code == Some(CloseCode::INVALID_PAYLOAD),
                "{err:?} maps to {code:?}"
            );
        }
    }
});
