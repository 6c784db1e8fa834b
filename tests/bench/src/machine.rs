//! What the figures were measured on, and a process's memory and CPU from `/proc`.

use std::path::Path;
use std::process::Command;

/// `2 × AMD EPYC 7B13, 23.4 GiB RAM, Linux 6.18.0` from `/proc`.
pub fn describe() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| cpu_model(&t))
        .unwrap_or_else(|| "unknown CPU".into());
    let ram = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| kib_field(&t, "MemTotal:"))
        .map_or_else(
            || "unknown".into(),
            |k| format!("{:.1} GiB", k as f64 / 1048576.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} × {cpu}, {ram} RAM, Linux {}", kernel.trim())
}

/// The first `model name` of `/proc/cpuinfo`.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

/// The value in KiB of `field` (e.g. `VmRSS:`) in a `/proc` status-like text.
pub fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The 1-minute load average.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The checked-out commit (short), with `-dirty` when tracked files differ from it.
pub fn commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let id = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(s) if !s.is_empty() => format!("{id}-dirty"),
        _ => id,
    }
}

/// Resident and peak resident memory of a process, KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`.
    pub rss_kib: u64,
    /// `VmHWM` (peak RSS).
    pub hwm_kib: u64,
}

/// Parses `/proc/PID/status`.
pub fn parse_status(status: &str) -> Option<Memory> {
    Some(Memory {
        rss_kib: kib_field(status, "VmRSS:")?,
        hwm_kib: kib_field(status, "VmHWM:")?,
    })
}

/// User + system CPU ticks of a process from `/proc/PID/stat` (fields 14 and 15; the
/// command name in parentheses may hold spaces, so fields are counted after its `)`).
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Memory of process `pid` now.
pub fn memory(pid: u32) -> Option<Memory> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// CPU seconds used so far by process `pid`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let ticks = parse_cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)?;
    Some(ticks as f64 / clock_ticks() as f64)
}

/// `getconf CLK_TCK` (100 on Linux unless configured otherwise).
fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memory_from_status() {
        let status = "Name:\tsop\nVmPeak:\t  999 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 40960,
                hwm_kib: 51200
            })
        );
        assert_eq!(parse_status("Name:\tsop\n"), None);
    }

    #[test]
    fn reads_cpu_ticks_after_a_command_with_spaces() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        let stat = "4242 (tokio rt) S 1 2 3 0 -1 4194560 10 0 0 0 123 45 0 0 20 0 9 0";
        assert_eq!(parse_cpu_ticks(stat), Some(168));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn reads_the_cpu_model() {
        let info = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(info).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(
            kib_field("MemTotal:  24000000 kB\n", "MemTotal:"),
            Some(24_000_000)
        );
    }
}
