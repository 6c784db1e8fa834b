//! `emulator-bench`: start the emulator in-process and hammer it over loopback with N
//! keep-alive HTTP/1.1 clients for a bounded time; prints requests per second.
//!
//! The client is a minimal hand-written HTTP/1.1 loop so that the measurement spends its CPU
//! on the server, not on a general-purpose client.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use sop_emulator::{ClockChoice, Config, start};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Emulator throughput benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long to run, in seconds (at most 60).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Contacts in the world.
    #[arg(long, default_value_t = 10_000)]
    contacts: u32,
    /// Request `/_emulator/health` instead, to see the server's ceiling without API work.
    #[arg(long)]
    health: bool,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    failed: u64,
}

async fn client(addr: String, path: String, until: Instant) -> Result<Tally, String> {
    let stream = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    let mut tally = Tally::default();
    let mut line = String::new();
    let mut body = Vec::new();
    while Instant::now() < until {
        w.write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        line.clear();
        r.read_line(&mut line).await.map_err(|e| e.to_string())?;
        let ok = line.starts_with("HTTP/1.1 200");
        let mut len = 0usize;
        loop {
            line.clear();
            if r.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
                return Err("connection closed".into());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                len = v
                    .trim()
                    .parse()
                    .map_err(|_| "bad content-length".to_owned())?;
            }
        }
        body.resize(len, 0);
        r.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        // A WeCom answer is OK only with errcode 0.
        let api_ok = body == b"ok" || body.windows(11).any(|w| w == b"\"errcode\":0");
        if ok && api_ok {
            tally.ok += 1;
        } else {
            tally.failed += 1;
        }
    }
    Ok(tally)
}

/// CPU seconds (user + system) used by this process so far, from `/proc/self/stat`
/// (Linux only; `None` elsewhere). Assumes the usual 100 clock ticks per second.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = Config::default();
    config.world.contacts = args.contacts;
    // The benchmark measures the server, not the documented quotas.
    config.wecom.api_limit_per_min = 0;
    config.wecom.api_limit_per_hour = 0;
    let emu = match start(
        config,
        ClockChoice::System,
        "127.0.0.1:0".parse().expect("valid address"),
    )
    .await
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("emulator-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = emu.addr.to_string();
    let token = {
        let cfg = emu.app.config();
        let mut st = emu.app.lock();
        st.wecom
            .tokens
            .issue(0, cfg.wecom.token_ttl_s, emu.app.now_ms(), 1)
            .0
    };
    let path = if args.health {
        "/_emulator/health".to_owned()
    } else {
        format!(
            "/cgi-bin/externalcontact/get?access_token={token}&external_userid={}",
            sop_emulator::ids::contact_id(args.contacts / 2)
        )
    };
    let seconds = args.seconds.clamp(1, 60);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..args.connections.max(1))
        .map(|_| tokio::spawn(client(addr.clone(), path.clone(), until)))
        .collect();
    let mut total = Tally::default();
    for t in tasks {
        match t.await {
            Ok(Ok(t)) => {
                total.ok += t.ok;
                total.failed += t.failed;
            }
            Ok(Err(e)) => eprintln!("client error: {e}"),
            Err(e) => eprintln!("client task failed: {e}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_before.zip(cpu_seconds()).map(|(a, b)| b - a);
    let endpoint = path.split('?').next().unwrap_or_default();
    println!(
        "endpoint: GET {endpoint}  connections: {}  seconds: {elapsed:.2}",
        args.connections
    );
    println!(
        "ok: {}  failed: {}  requests/s: {:.0}",
        total.ok,
        total.failed,
        (total.ok + total.failed) as f64 / elapsed
    );
    if let Some(cpu) = cpu.filter(|c| *c > 0.0) {
        println!(
            "cpu: {cpu:.2} s (client and server)  requests per cpu-second: {:.0}",
            (total.ok + total.failed) as f64 / cpu
        );
    }
    emu.shutdown().await;
    if total.failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
