//! Registrations that arrive together are synced to disk together: every one is answered
//! `Registered`, and every name so acknowledged is still bound after the tracker is killed
//! (SIGKILL) and started again on the same state.

use p2p_tests::TestNet;
use p2p_tests::raw::{Client, random_key, signed};
use proto::tracker::{Refusal, TrackerMsg};

/// Registrations in flight at once.
const AT_ONCE: usize = 32;

#[tokio::test]
async fn names_registered_together_are_all_acknowledged_and_survive_a_kill() {
    let net = TestNet::new();
    let mut tracker = net.spawn_tracker(None);
    let addr = tracker.addr;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..AT_ONCE {
        tasks.spawn(async move {
            let key = random_key();
            let name = format!("peer-{i}");
            let mut c = Client::connect(addr, &key).await.expect("connect");
            let answer = c.register(signed(&key, &name, 1)).await;
            assert!(
                matches!(answer, TrackerMsg::Registered { .. }),
                "{name}: {answer:?}"
            );
            (name, c)
        });
    }
    let mut acknowledged = Vec::new();
    while let Some(done) = tasks.join_next().await {
        acknowledged.push(done.expect("registration task").0);
    }
    assert_eq!(acknowledged.len(), AT_ONCE);

    tracker.proc.kill();
    tracker.restart();
    for name in acknowledged {
        let other = random_key();
        let mut c = Client::connect(tracker.addr, &other)
            .await
            .expect("connect");
        match c.register(signed(&other, &name, 1)).await {
            TrackerMsg::Refused {
                reason: Refusal::NameTaken,
                ..
            } => {}
            other => panic!("{name} is not bound after the restart: {other:?}"),
        }
    }
}
