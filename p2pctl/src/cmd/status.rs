//! `p2pctl status`: identity, each discovery source, listen address, counts, resource use.

use std::io::Write;

use proto::api::{Call, PeerSource, SourceState, SourceStatus, Status, TrackerLinkState};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::client::Client;
use crate::error::Error;
use crate::output::{self, Out, clean, human_bytes, human_duration, key_values, relative_time};

/// Asks for the status and prints it.
pub(crate) async fn run<S, W>(
    client: &mut Client<S>,
    out: &mut Out<W>,
    json: bool,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    super::show(client, out, json, Call::Status {}, |v: Status| {
        render(&v, output::unix_now())
    })
    .await
}

/// Word for a tracker link state.
pub(crate) fn state_word(state: TrackerLinkState) -> &'static str {
    match state {
        TrackerLinkState::Connecting => "connecting",
        TrackerLinkState::Registered => "registered",
        TrackerLinkState::Refused => "refused",
    }
}

/// The human key/value block, with relative times computed at `now` (unix seconds): one
/// line per discovery source (a daemon older than `sources` gives only its tracker).
fn render(s: &Status, now: u64) -> String {
    let r = &s.resources;
    let mut rows = vec![
        ("name", clean(s.name.as_str())),
        ("id", s.id.to_string()),
        ("version", clean(&s.version)),
        ("listen", s.listen.to_string()),
        ("control socket", clean(&s.socket)),
    ];
    if s.sources.is_empty()
        && let Some(t) = &s.tracker
    {
        let mut tracker = format!("{} {}", clean(&t.addr), state_word(t.state));
        if t.since != 0 {
            tracker.push_str(&format!(" ({})", relative_time(t.since, now)));
        }
        rows.push(("tracker", tracker));
        if let Some(key) = &t.key {
            rows.push(("tracker key", key.to_string()));
        }
        if let Some(detail) = t.detail.as_deref().filter(|d| !d.is_empty()) {
            rows.push(("tracker detail", clean(detail)));
        }
    }
    if s.tracker.is_none() && !s.sources.iter().any(|x| x.kind == PeerSource::Tracker) {
        rows.push(("tracker", "none configured".to_owned()));
    }
    for source in &s.sources {
        source_rows(&mut rows, source, now);
    }
    rows.extend([
        (
            "peers",
            format!("{} online, {} known", s.peers_online, s.peers_known),
        ),
        ("memory", human_bytes(r.rss_bytes)),
        ("cpu", format!("{:.1}%", r.cpu_percent)),
        ("uptime", human_duration(r.uptime_secs)),
        ("pid", r.pid.to_string()),
    ]);
    key_values(&rows)
}

/// The rows of one source: `tracker  ADDR STATE (AGO), sees N peers`, its key and its last
/// error; `link  N peers linked`; `book  N addresses kept`.
fn source_rows(rows: &mut Vec<(&'static str, String)>, src: &SourceStatus, now: u64) {
    let (key_row, detail_row) = match src.kind {
        PeerSource::Tracker => ("tracker key", "tracker detail"),
        PeerSource::Lan => ("lan key", "lan detail"),
        PeerSource::Dht => ("dht key", "dht detail"),
        PeerSource::Book => ("book key", "book detail"),
        PeerSource::Link => ("link key", "link detail"),
    };
    let mut words = Vec::new();
    if let Some(addr) = &src.addr {
        words.push(clean(addr));
    }
    if src.state != SourceState::Up || src.addr.is_some() {
        words.push(src.state.as_str().to_owned());
    }
    if let Some(since) = src.since.filter(|s| *s != 0) {
        words.push(format!("({})", relative_time(since, now)));
    }
    let count = match src.kind {
        PeerSource::Link => format!("{} linked", plural(src.peers, "peer", "peers")),
        PeerSource::Book => format!("{} kept", plural(src.peers, "address", "addresses")),
        PeerSource::Tracker | PeerSource::Lan | PeerSource::Dht => {
            format!("sees {}", plural(src.peers, "peer", "peers"))
        }
    };
    let value = if words.is_empty() {
        count
    } else {
        format!("{}, {count}", words.join(" "))
    };
    rows.push((src.kind.as_str(), value));
    if let Some(key) = &src.key {
        rows.push((key_row, key.to_string()));
    }
    if let Some(detail) = src.detail.as_deref().filter(|d| !d.is_empty()) {
        rows.push((detail_row, clean(detail)));
    }
}

/// `1 peer`, `2 peers`.
fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::fake;
    use proto::api::{Resources, TrackerStatus};
    use proto::{PeerName, SecretKey};

    fn sample() -> Status {
        Status {
            name: PeerName::new("alice").expect("name"),
            id: SecretKey::from_seed([1; 32]).peer_id(),
            version: "0.1.0".into(),
            listen: "127.0.0.1:4000".parse().expect("addr"),
            socket: "/run/user/1000/p2pd/p2pd.sock".into(),
            tracker: Some(TrackerStatus {
                addr: "127.0.0.1:7000".into(),
                key: None,
                state: TrackerLinkState::Refused,
                detail: Some("name is taken by another key\u{1b}[2J".into()),
                since: 1_000_000 - 180,
            }),
            sources: Vec::new(),
            peers_online: 2,
            peers_known: 5,
            resources: Resources {
                pid: 42,
                rss_bytes: 12_897_485,
                cpu_percent: 1.25,
                uptime_secs: 3 * 3600 + 720,
            },
        }
    }

    #[test]
    fn human_block() {
        let s = sample();
        let expected = format!(
            "name            alice\n\
             id              {}\n\
             version         0.1.0\n\
             listen          127.0.0.1:4000\n\
             control socket  /run/user/1000/p2pd/p2pd.sock\n\
             tracker         127.0.0.1:7000 refused (3 min ago)\n\
             tracker detail  name is taken by another key\\e[2J\n\
             peers           2 online, 5 known\n\
             memory          12.3 MiB\n\
             cpu             1.2%\n\
             uptime          3 h 12 min\n\
             pid             42\n",
            s.id
        );
        assert_eq!(render(&s, 1_000_000), expected);
    }

    #[test]
    fn one_line_per_source() {
        let mut s = sample();
        s.tracker.as_mut().unwrap().state = TrackerLinkState::Connecting;
        s.tracker.as_mut().unwrap().detail = Some("tracker closed the connection".into());
        s.sources = vec![
            SourceStatus::tracker(s.tracker.as_ref().unwrap(), 0),
            SourceStatus::up(PeerSource::Link, 1),
            SourceStatus::up(PeerSource::Book, 3),
        ];
        let text = render(&s, 1_000_000);
        assert!(
            text.contains(
                "\ntracker         127.0.0.1:7000 down (3 min ago), sees 0 peers\n\
                 tracker detail  tracker closed the connection\n\
                 link            1 peer linked\n\
                 book            3 addresses kept\n\
                 peers           2 online, 5 known\n"
            ),
            "{text}"
        );
        s.sources[0] = SourceStatus::tracker(
            &TrackerStatus {
                state: TrackerLinkState::Registered,
                detail: None,
                ..s.tracker.clone().unwrap()
            },
            1,
        );
        s.sources.truncate(1);
        let text = render(&s, 1_000_000);
        assert!(
            text.contains(
                "\ntracker         127.0.0.1:7000 registered (3 min ago), sees 1 peer\npeers"
            ),
            "{text}"
        );
    }

    #[test]
    fn tracker_key_is_shown_once_known() {
        let mut s = sample();
        let key = SecretKey::from_seed([2; 32]).peer_id();
        s.tracker.as_mut().unwrap().key = Some(key);
        s.tracker.as_mut().unwrap().detail = None;
        s.tracker.as_mut().unwrap().state = TrackerLinkState::Registered;
        let text = render(&s, 1_000_000);
        assert!(
            text.contains(&format!("\ntracker key     {key}\n")),
            "{text}"
        );
        assert!(
            text.contains("127.0.0.1:7000 registered (3 min ago)"),
            "{text}"
        );
        assert!(!text.contains("tracker detail"), "{text}");
    }

    #[tokio::test]
    async fn json_prints_the_result_as_received() {
        let result = serde_json::to_string(&sample()).expect("json");
        let (mut client, daemon) = fake::daemon(vec![vec![fake::ok(1, &result)]], vec![]);
        let mut out = Out::new(Vec::new());
        let (requests, res) = tokio::join!(daemon, run(&mut client, &mut out, true));
        res.expect("status");
        assert_eq!(
            requests,
            [r#"{"jsonrpc":"2.0","id":1,"method":"status","params":{}}"#]
        );
        assert_eq!(
            String::from_utf8(out.into_inner()).expect("utf8"),
            format!("{result}\n")
        );
    }
}
