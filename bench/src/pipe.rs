//! The baseline every file-moving benchmark is put beside: a plain TCP pipe over loopback
//! between two threads that syncs the copy at the end.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::payload::BLOCK;

/// One copy through the TCP pipe.
#[derive(Debug, Clone, Copy)]
pub struct Pipe {
    /// Bytes copied.
    pub bytes: u64,
    /// Connect -> the copy synced (`fsync`) at the receiver.
    pub total: Duration,
    /// Connect -> the last byte written (not yet synced) at the receiver.
    pub until_eof: Duration,
}

/// Copies `src` to a new file `dst` through a loopback TCP connection between two threads:
/// the sender reads the file and writes it in 1 MiB writes, the receiver reads into a 1 MiB
/// buffer, writes each read to the file and syncs the file at the end. With `sync_every`,
/// the receiver also syncs each time that many more bytes have been written (as p2pd's
/// receiver does every 16 chunks), before reading on.
pub fn tcp_pipe(src: &Path, dst: &Path, sync_every: Option<u64>) -> anyhow::Result<Pipe> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    let dst_owned = dst.to_owned();
    let receiver = std::thread::spawn(move || -> anyhow::Result<(u64, Instant, Instant)> {
        let (mut sock, _) = listener.accept()?;
        let mut file = File::create_new(&dst_owned)?;
        let mut buf = vec![0u8; BLOCK];
        let mut bytes = 0u64;
        let mut synced = 0u64;
        loop {
            let n = sock.read(&mut buf)?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n])?;
            bytes += n as u64;
            if let Some(every) = sync_every
                && bytes - synced >= every
            {
                file.sync_all()?;
                synced = bytes;
            }
        }
        let eof = Instant::now();
        file.sync_all()?;
        Ok((bytes, eof, Instant::now()))
    });
    let mut file = File::open(src).with_context(|| format!("cannot read {}", src.display()))?;
    let mut buf = vec![0u8; BLOCK];
    let started = Instant::now();
    let mut sock = TcpStream::connect(addr)?;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sock.write_all(&buf[..n])?;
    }
    drop(sock);
    let (bytes, eof, synced) = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("the pipe's receiver panicked"))??;
    Ok(Pipe {
        bytes,
        total: synced - started,
        until_eof: eof - started,
    })
}
