//! Tracker links, from the same bytes both ways: what trackerd reads from a peer
//! (`PeerMsg`, capped at `MAX_REQUEST_FRAME`) and what p2pd reads from the tracker
//! (`TrackerMsg`, capped at `MAX_RESPONSE_FRAME`).
//!
//! Checks: the frame stream decodes the same however it is cut into reads; every message
//! round-trips through the frame codec and through JSON; signature checks and address
//! resolution of decoded records never panic and resolve sensibly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use p2p_fuzz::check_neutralize;
use p2p_fuzz::frames::check_stream;
use p2p_fuzz::json::check_json_round_trip;
use proto::tracker::{MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, PeerEntry, PeerMsg, TrackerMsg};

fuzz_target!(|data: &[u8]| {
    for msg in check_stream::<PeerMsg>(data, MAX_REQUEST_FRAME) {
        check_json_round_trip(&msg);
        match &msg {
            PeerMsg::Register(signed) => {
                let _ = signed.verify();
            }
            PeerMsg::AddrRecord(record) => {
                let _ = record.check(&record.record.key, 0);
            }
            PeerMsg::Watch { keys, .. } | PeerMsg::Unwatch { keys } => {
                assert!(keys.len() <= proto::tracker::MAX_WATCH_KEYS);
            }
            _ => {}
        }
    }
    for msg in check_stream::<TrackerMsg>(data, MAX_RESPONSE_FRAME) {
        check_json_round_trip(&msg);
        match &msg {
            TrackerMsg::Registered { entry }
            | TrackerMsg::Joined(entry)
            | TrackerMsg::Updated(entry) => check_entry(entry),
            TrackerMsg::Peers { peers, .. } => peers.iter().for_each(check_entry),
            TrackerMsg::Found { entry, .. } => entry.iter().for_each(check_entry),
            TrackerMsg::Page { peers, .. } => {
                assert!(peers.len() <= usize::from(u16::MAX));
                peers.iter().for_each(check_entry);
            }
            TrackerMsg::Refused { reason, detail } => {
                assert!(!reason.describe().is_empty());
                check_neutralize(detail);
            }
            TrackerMsg::Handovers { chain, .. } => {
                assert!(chain.len() <= proto::tracker::MAX_HANDOVER_CHAIN);
                chain.iter().for_each(|h| {
                    let _ = h.verify();
                });
            }
            TrackerMsg::AddrRecord { record, .. } => {
                let _ = record.check(&record.record.key, 0);
                assert_eq!(
                    proto::addr_record::SignedAddrRecord::decode(&record.encode()).as_ref(),
                    Ok(record)
                );
            }
            TrackerMsg::Hello { .. }
            | TrackerMsg::Left { .. }
            | TrackerMsg::Ping { .. }
            | TrackerMsg::Pong { .. } => {}
        }
    }
});

/// The addresses to dial: no duplicates, no more than announced, each one announced or an
/// unspecified announcement completed with the observed IP (same port).
fn check_entry(entry: &PeerEntry) {
    let _ = entry.signed.verify();
    let announced = &entry.signed.record.addrs;
    let dial = entry.addrs();
    assert!(dial.len() <= announced.len());
    for (i, a) in dial.iter().enumerate() {
        assert!(!dial[..i].contains(a), "duplicate address {a}");
        let from_unspecified = a.ip() == entry.observed
            && announced
                .iter()
                .any(|x| x.ip().is_unspecified() && x.port() == a.port());
        assert!(
            announced.contains(a) || from_unspecified,
            "{a} came from nowhere"
        );
        if a.ip().is_unspecified() {
            assert!(entry.observed.is_unspecified(), "{a} left unresolved");
        }
    }
}
