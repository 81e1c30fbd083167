//! A stand-in for a hostile host on a test LAN: it announces one `_p2pd._tcp.local.` instance
//! with the TXT record it is given, and counts who dials the port it announces. Run it inside
//! a network namespace the test made, never outside one.
//!
//! `mdns-announce INSTANCE PORT [KEY=HEX]...`: listens for TCP on `0.0.0.0:PORT`, announces
//! INSTANCE at PORT with each KEY set to the bytes HEX, prints `announced`, then prints
//! `accepted ADDR` for each connection made to PORT, until killed.

use std::io::Write;
use std::net::TcpListener;
use std::process::ExitCode;

use mdns_sd::{ServiceDaemon, ServiceInfo, TxtProperty};

/// The service type p2pd announces.
const SERVICE_TYPE: &str = "_p2pd._tcp.local.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [instance, port, txt @ ..] = &args[..] else {
        eprintln!("usage: mdns-announce INSTANCE PORT [KEY=HEX]...");
        return ExitCode::from(2);
    };
    match run(instance, port, txt) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mdns-announce: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(instance: &str, port: &str, txt: &[String]) -> Result<(), String> {
    let port: u16 = port.parse().map_err(|e| format!("port {port:?}: {e}"))?;
    let mut props = Vec::new();
    for kv in txt {
        let (k, hex) = kv
            .split_once('=')
            .ok_or_else(|| format!("{kv:?} is not KEY=HEX"))?;
        props.push(TxtProperty::from((k, unhex(hex)?)));
    }
    let listener = TcpListener::bind(("0.0.0.0", port)).map_err(|e| e.to_string())?;
    let mdns = ServiceDaemon::new().map_err(|e| e.to_string())?;
    let mut info = ServiceInfo::new(
        SERVICE_TYPE,
        instance,
        "mdns-announce.local.",
        (),
        port,
        props,
    )
    .map_err(|e| e.to_string())?
    .enable_addr_auto();
    info.set_requires_probe(false);
    mdns.register(info).map_err(|e| e.to_string())?;
    say("announced");
    for conn in listener.incoming() {
        match conn.and_then(|c| c.peer_addr()) {
            Ok(addr) => say(&format!("accepted {addr}")),
            Err(e) => eprintln!("accept: {e}"),
        }
    }
    Ok(())
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd hex length in {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| format!("{s:?}: {e}")))
        .collect()
}
