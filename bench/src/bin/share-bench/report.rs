//! The goals, and the figures as a plain list for a terminal (`--json` gives them all;
//! `bench-report` renders them beside their baselines).

use serde_json::{Value, json};

/// First page over the wire, p99, in ms.
pub const FIRST_PAGE_P99_MS: f64 = 50.0;
/// The whole listing of the directory (bob's `ls`, median), in ms.
pub const WHOLE_LISTING_MS: f64 = 1000.0;
/// alice's peak and final resident memory while indexing, in MiB.
pub const RSS_MIB: f64 = 64.0;
/// Slowest `status` answer while indexing, in ms.
pub const STATUS_MAX_MS: f64 = 50.0;
/// `get` against `send` of the same file: the same within noise.
pub const GET_VS_SEND: f64 = 0.9;

/// The goals as JSON.
pub fn goals() -> Value {
    json!({
        "first_page_p99_ms": FIRST_PAGE_P99_MS, "whole_listing_ms": WHOLE_LISTING_MS,
        "rss_mib": RSS_MIB, "status_max_ms": STATUS_MAX_MS, "get_vs_send": GET_VS_SEND,
    })
}

fn num(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN)
}

/// Prints the main figures, one a line, each with its baseline.
pub fn print(v: &Value) {
    let ms = |p: &str| num(v, p) / 1000.0;
    let mib = |p: &str| num(v, p) / 1048576.0;
    println!(
        "ls of {} entries: first page p50 {:.2} ms, p99 {:.2} ms (goal < {FIRST_PAGE_P99_MS} ms)",
        num(v, "/ls/entries"),
        ms("/ls/first_page/p50_us"),
        ms("/ls/first_page/p99_us")
    );
    println!(
        "  whole listing: bob's ls RPC p50 {:.1} ms, max {:.1} ms (goal < {WHOLE_LISTING_MS} ms); \
         raw pages p50 {:.1} ms; local readdir + metadata p50 {:.1} ms",
        ms("/ls/rpc_whole/p50_us"),
        ms("/ls/rpc_whole/max_us"),
        ms("/ls/raw_whole/p50_us"),
        ms("/ls/readdir/p50_us")
    );
    println!(
        "indexing {} files: ready {:.0} ms, hashed {:.0} ms; alice RSS before {:.1} MiB, \
         peak {:.1} MiB, final {:.1} MiB (goal < {RSS_MIB} MiB)",
        num(v, "/index/files"),
        num(v, "/index/ready_ms"),
        num(v, "/index/hashed_ms"),
        mib("/index/rss_before_bytes"),
        mib("/index/hwm_bytes"),
        mib("/index/rss_final_bytes")
    );
    println!(
        "  status while indexing p50 {:.2} / p99 {:.2} / max {:.2} ms (goal < {STATUS_MAX_MS} \
         ms); with no share p50 {:.2} / p99 {:.2} / max {:.2} ms",
        ms("/index/status/p50_us"),
        ms("/index/status/p99_us"),
        ms("/index/status/max_us"),
        ms("/status_idle/p50_us"),
        ms("/status_idle/p99_us"),
        ms("/status_idle/max_us")
    );
    println!(
        "{:.0} MiB moved, median MB/s: get {:.0}, send {:.0}, TCP pipe + fsync {:.0}",
        mib("/size_bytes"),
        num(v, "/move/get_median"),
        num(v, "/move/send_median"),
        num(v, "/move/pipe_median")
    );
}
