//! The "Shares" section: share-bench's figures beside their same-run baselines.

use std::fmt::Write;

use serde_json::Value;

use crate::Run;
use crate::render::{MIB, Row, num, table};

/// Renders the `share-bench` run.
pub fn render(out: &mut String, run: &Run) {
    let v = &run.json;
    let ms = |p: &str| num(v, p).map(|us| us / 1000.0);
    let mib = |p: &str| num(v, p).map(|b| b / MIB);
    let page_goal = num(v, "/goals/first_page_p99_ms").unwrap_or(50.0);
    let whole_goal = num(v, "/goals/whole_listing_ms").unwrap_or(1000.0);
    let rss_goal = num(v, "/goals/rss_mib").unwrap_or(64.0);
    let status_goal = num(v, "/goals/status_max_ms").unwrap_or(50.0);
    let same = num(v, "/goals/get_vs_send").unwrap_or(0.9);
    let entries = num(v, "/ls/entries").unwrap_or(0.0);
    let files = num(v, "/index/files").unwrap_or(0.0);
    let readdir = ms("/ls/readdir/p50_us");
    let send = num(v, "/move/send_median");
    let pipe = num(v, "/move/pipe_median");
    let rows = [
        Row::new(
            format!(
                "ls of one directory of {entries:.0} files, first page ({:.0} entries) over the wire, p50 ms",
                num(v, "/ls/page_entries").unwrap_or(0.0)
            ),
            ms("/ls/first_page/p50_us"),
        )
        .beside("local readdir + metadata, whole directory", readdir),
        Row::new("first page, p99 ms", ms("/ls/first_page/p99_us"))
            .beside("local readdir + metadata, whole directory", readdir)
            .goal(format!("< {page_goal} ms"), |m| m < page_goal),
        Row::new(
            "whole listing: bob's `ls` RPC (link, Stat, every page, JSON), p50 ms",
            ms("/ls/rpc_whole/p50_us"),
        )
        .beside("local readdir + metadata", readdir)
        .goal(format!("< {whole_goal} ms"), |m| m < whole_goal),
        Row::new(
            "whole listing: bob's `ls` RPC, slowest ms",
            ms("/ls/rpc_whole/max_us"),
        )
        .beside("local readdir + metadata, slowest", ms("/ls/readdir/max_us")),
        Row::new(
            "whole listing: every page on one open link, p50 ms",
            ms("/ls/raw_whole/p50_us"),
        )
        .beside("local readdir + metadata", readdir),
        Row::new(
            format!("indexing {files:.0} files of 1-4 KiB: share add → ready (walked), ms"),
            num(v, "/index/ready_ms"),
        ),
        Row::new(
            "share add → every file hashed, ms",
            num(v, "/index/hashed_ms"),
        ),
        Row::new("p2pd peak RSS (VmHWM) after indexing, MiB", mib("/index/hwm_bytes"))
            .beside("before share add", mib("/index/rss_before_bytes"))
            .goal(format!("< {rss_goal:.0} MiB"), |m| m < rss_goal),
        Row::new("p2pd RSS once every file is hashed, MiB", mib("/index/rss_final_bytes"))
            .beside("before share add", mib("/index/rss_before_bytes"))
            .goal(format!("< {rss_goal:.0} MiB"), |m| m < rss_goal),
        Row::new(
            "`status` every 20 ms while indexing, p50 ms",
            ms("/index/status/p50_us"),
        )
        .beside("no share", ms("/status_idle/p50_us")),
        Row::new("`status` while indexing, p99 ms", ms("/index/status/p99_us"))
            .beside("no share", ms("/status_idle/p99_us")),
        Row::new("`status` while indexing, slowest ms", ms("/index/status/max_us"))
            .beside("no share", ms("/status_idle/max_us"))
            .goal(format!("< {status_goal} ms"), |m| m < status_goal),
        Row::new(
            format!(
                "{:.0} MiB `get` → verified, fsynced at bob, median MB/s",
                num(v, "/size_bytes").unwrap_or(0.0) / MIB
            ),
            num(v, "/move/get_median"),
        )
        .beside("`send` of the same file", send)
        .goal(format!("≥ {same}× send"), |m| {
            send.is_some_and(|s| m >= same * s)
        }),
        Row::new("`get`, median MB/s", num(v, "/move/get_median"))
            .beside("TCP pipe + fsync", pipe),
        Row::new("`send`, median MB/s", send).beside("TCP pipe + fsync", pipe),
    ];
    let _ = writeln!(
        out,
        "## Shares (`share-bench`)\n\n`{} {}`; the temporary directory was on {}. The first page \
         is one `List` request, timed from its write to its answer, repeated on one raw \
         `p2p-share/1` link made with bob's key; `get`, `send` and the pipe alternate after a \
         warm-up, each timed until the copy is verified and synced at bob.\n",
        run.program,
        run.args.join(" "),
        v.pointer("/machine/fs_type")
            .and_then(Value::as_str)
            .unwrap_or("?"),
    );
    table(out, &rows);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn share_rows_carry_baselines_goals_and_verdicts() {
        let run = Run {
            program: "share-bench",
            args: vec!["--quick".into()],
            json: json!({
                "ls": {"entries": 100000, "page_entries": 1000,
                       "first_page": {"p50_us": 500.0, "p99_us": 60000.0},
                       "readdir": {"p50_us": 130000.0, "max_us": 140000.0},
                       "rpc_whole": {"p50_us": 220000.0, "max_us": 250000.0},
                       "raw_whole": {"p50_us": 70000.0}},
                "index": {"files": 100000, "ready_ms": 800.0, "hashed_ms": 3000.0,
                          "rss_before_bytes": 16u64 << 20, "hwm_bytes": 100u64 << 20,
                          "rss_final_bytes": 40u64 << 20,
                          "status": {"p50_us": 300.0, "p99_us": 3000.0, "max_us": 4000.0}},
                "status_idle": {"p50_us": 250.0, "p99_us": 350.0, "max_us": 400.0},
                "move": {"get_median": 450.0, "send_median": 500.0, "pipe_median": 900.0},
                "size_bytes": 1u64 << 30,
                "goals": {"first_page_p99_ms": 50.0, "whole_listing_ms": 1000.0,
                          "rss_mib": 64.0, "status_max_ms": 50.0, "get_vs_send": 0.9},
            }),
        };
        let mut text = String::new();
        render(&mut text, &run);
        for row in [
            "| first page, p99 ms | 60.0 | local readdir + metadata, whole directory 130 | 0.46× | < 50 ms | MISSED |",
            "| p2pd peak RSS (VmHWM) after indexing, MiB | 100 | before share add 16.0 | 6.25× | < 64 MiB | MISSED |",
            "| p2pd RSS once every file is hashed, MiB | 40.0 | before share add 16.0 | 2.50× | < 64 MiB | met |",
            "| `status` while indexing, slowest ms | 4.00 | no share 0.40 | 10.00× | < 50 ms | met |",
            "| 1024 MiB `get` → verified, fsynced at bob, median MB/s | 450 | `send` of the same file 500 | 0.90× | ≥ 0.9× send | met |",
        ] {
            assert!(text.contains(row), "no row {row:?} in\n{text}");
        }
    }
}
