//! Signed address records, as a tracker, the LAN or the DHT hands them over.
//!
//! Checks: decoding never panics and refuses anything over the cap; a decoded record encodes
//! back to the same bytes and round-trips through JSON; the checks and address resolution
//! never panic, and a record that passes `check` verifies and names the key asked for.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::json::check_json_round_trip;
use proto::addr_record::{MAX_ADDRS, MAX_ENCODED, SignedAddrRecord};

fuzz_target!(|data: &[u8]| {
    let Ok(rec) = SignedAddrRecord::decode(data) else {
        return;
    };
    assert!(data.len() <= MAX_ENCODED);
    assert!(rec.record.addrs.len() <= MAX_ADDRS);
    check_json_round_trip(&rec);
    let again = rec.encode();
    assert_eq!(SignedAddrRecord::decode(&again).as_ref(), Ok(&rec));
    let now = data.len() as u64 * 1_000_003;
    if rec.check(&rec.record.key, now).is_ok() {
        assert!(rec.verify());
        assert!(rec.record.expiry > now);
    }
    let dial = rec.record.dial_addrs(None);
    assert!(dial.iter().all(|a| !a.ip().is_unspecified()));
    assert!(dial.len() <= rec.record.addrs.len());
});
