//! The "Reach" section: `reach-bench` (two trackers, one down; a moved peer reached through
//! the DHT) and `dht-lookup` (record lookups in local DHT testnets).

use std::fmt::Write;

use serde_json::Value;

use crate::Run;
use crate::render::{Row, num, table};

/// Renders the `reach-bench` run.
pub fn render_reach(out: &mut String, run: &Run) {
    let v = &run.json;
    let _ = writeln!(
        out,
        "## Reach without a tracker (`reach-bench`)\n\n`{} {}`, {:.0} rounds per case, on \
         loopback with LAN discovery off and a local `dht-testnet` of {:.0} nodes. The \
         machine was shared and loaded (load average {}), so treat the times as upper \
         bounds.\n",
        run.program,
        run.args.join(" "),
        num(v, "/rounds").unwrap_or(0.0),
        num(v, "/dht_nodes").unwrap_or(0.0),
        v.pointer("/loadavg").and_then(Value::as_str).unwrap_or("?"),
    );
    let rows = [
        Row::new(
            "p2pd start → `status` shows the live tracker registered, one of two trackers down, p50 ms",
            num(v, "/two_trackers/one_down/registered/p50_ms"),
        )
        .beside(
            "both up",
            num(v, "/two_trackers/both_up/registered/p50_ms"),
        ),
        Row::new(
            "p2pd start → online at its peer, one of two trackers down, p50 ms",
            num(v, "/two_trackers/one_down/online_at_peer/p50_ms"),
        )
        .beside(
            "both up",
            num(v, "/two_trackers/both_up/online_at_peer/p50_ms"),
        ),
        Row::new(
            "the same, max ms",
            num(v, "/two_trackers/one_down/online_at_peer/max_ms"),
        )
        .beside(
            "both up",
            num(v, "/two_trackers/both_up/online_at_peer/max_ms"),
        ),
        Row::new(
            "tracker gone, bob moved (restarted on a new port) → alice's queued message delivered through the DHT, p50 ms",
            num(v, "/dht_moved/p50_ms"),
        ),
        Row::new("the same, max ms", num(v, "/dht_moved/max_ms")),
    ];
    table(out, &rows);
}

/// Renders the `dht-lookup` run.
pub fn render_lookup(out: &mut String, run: &Run) {
    let v = &run.json;
    let _ = writeln!(
        out,
        "## DHT lookups (`dht-lookup`)\n\n`{} {}`: a peer's address record looked up from a \
         fresh client in local testnets (nothing leaves 127.0.0.1), with mainline's default \
         2 s request timeout (what p2pd uses) and with 250 ms.\n",
        run.program,
        run.args.join(" "),
    );
    let mut rows = Vec::new();
    for r in v
        .pointer("/rows")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let nodes = num(r, "/nodes").unwrap_or(0.0);
        let timeout = num(r, "/request_timeout_ms").unwrap_or(0.0);
        let ms = |p: &str| num(r, p).map(|us| us / 1000.0);
        rows.push(
            Row::new(
                format!("{nodes:.0} nodes, {timeout:.0} ms timeout: first valid record, p90 ms"),
                ms("/first_us/p90_us"),
            )
            .goal("< 100 ms", |m| m < 100.0),
        );
        rows.push(
            Row::new(
                format!("{nodes:.0} nodes, {timeout:.0} ms timeout: complete lookup, p90 ms"),
                ms("/complete_us/p90_us"),
            )
            .goal("< 500 ms", |m| m < 500.0),
        );
    }
    table(out, &rows);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reach_rows_put_one_tracker_down_beside_both_up() {
        let run = Run {
            program: "reach-bench",
            args: vec![],
            json: json!({
                "rounds": 3, "dht_nodes": 20, "loadavg": "1 1 1",
                "two_trackers": {
                    "both_up": {"registered": {"p50_ms": 100.0}, "online_at_peer": {"p50_ms": 200.0, "max_ms": 300.0}},
                    "one_down": {"registered": {"p50_ms": 150.0}, "online_at_peer": {"p50_ms": 250.0, "max_ms": 400.0}},
                },
                "dht_moved": {"p50_ms": 5000.0, "max_ms": 9000.0},
            }),
        };
        let mut out = String::new();
        render_reach(&mut out, &run);
        assert!(
            out.contains("one of two trackers down, p50 ms | 150 | both up 100 | 1.50×"),
            "{out}"
        );
        assert!(out.contains("| the same, max ms | 9000 |"), "{out}");
    }

    #[test]
    fn lookup_rows_check_the_goals() {
        let run = Run {
            program: "dht-lookup",
            args: vec![],
            json: json!({"rows": [{"nodes": 20, "request_timeout_ms": 250,
                "first_us": {"p90_us": 50_000.0}, "complete_us": {"p90_us": 600_000.0}}]}),
        };
        let mut out = String::new();
        render_lookup(&mut out, &run);
        assert!(
            out.contains("first valid record, p90 ms | 50.0 | – | – | < 100 ms | met |"),
            "{out}"
        );
        assert!(
            out.contains("complete lookup, p90 ms | 600 | – | – | < 500 ms | MISSED |"),
            "{out}"
        );
    }
}
