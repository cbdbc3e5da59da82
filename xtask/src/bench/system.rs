//! What the figures read from the system: the machine's description, and a process's CPU
//! time, resident memory and children from `/proc`.

use std::process::Command;

use serde::Serialize;

use super::target::Result;

/// The machine a report was measured on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Machine {
    /// Online CPUs (`nproc`).
    pub(crate) nproc: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub(crate) cpu_model: String,
    /// `MemTotal` from `/proc/meminfo`, in KiB.
    pub(crate) memory_kib: u64,
    /// `uname -sr`.
    pub(crate) kernel: String,
}

impl Machine {
    /// Describes this machine.
    pub(crate) fn describe() -> Machine {
        let nproc = command_output("nproc", &[])
            .and_then(|text| text.parse().ok())
            .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
            .unwrap_or(0);
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines().find_map(|line| {
                    line.strip_prefix("model name")?.split_once(':').map(|(_, model)| model.trim().to_owned())
                })
            })
            .unwrap_or_else(|| "unknown".into());
        let memory_kib =
            std::fs::read_to_string("/proc/meminfo").ok().and_then(|info| kib_field(&info, "MemTotal:")).unwrap_or(0);
        let kernel = command_output("uname", &["-sr"]).unwrap_or_else(|| "unknown".into());
        Machine { nproc, cpu_model, memory_kib, kernel }
    }

    /// One line for the table's heading.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} × {}, {:.1} GiB RAM, {}",
            self.nproc,
            self.cpu_model,
            self.memory_kib as f64 / 1024.0 / 1024.0,
            self.kernel
        )
    }
}

/// A command's trimmed standard output, when it ran and succeeded.
fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Clock ticks per second (`getconf CLK_TCK`, else 100), the unit of `/proc/PID/stat` times.
pub(crate) fn clock_ticks() -> u64 {
    command_output("getconf", &["CLK_TCK"]).and_then(|text| text.parse().ok()).filter(|&ticks| ticks > 0).unwrap_or(100)
}

/// The CPU time (user + system, all threads, children excluded) of `pid`, in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses; the fields start after the last ')'.
    let after = stat.rfind(')').map(|index| &stat[index + 1..]).ok_or("malformed /proc/PID/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state (field 3) … utime is field 14, stime field 15 (1-based).
    let field = |number: usize| -> Result<u64> { Ok(fields.get(number - 3).ok_or("short /proc/PID/stat")?.parse()?) };
    Ok(field(14)? + field(15)?)
}

/// The whole machine's CPU time so far, from the first line of `/proc/stat`, in clock ticks:
/// (busy, all). Busy is everything but idle and I/O wait; their ratio over an interval is how
/// much of all the cores was in use.
pub(crate) fn machine_ticks() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().find(|line| line.starts_with("cpu ")).ok_or("no cpu line in /proc/stat")?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map(str::parse).collect::<std::result::Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let all: u64 = ticks.iter().take(8).sum();
    let waiting = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    Ok((all - waiting, all))
}

/// The resident set size (`VmRSS`) of `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(kib_field(&status, "VmRSS:").ok_or("no VmRSS in /proc/PID/status")?)
}

/// The direct children of `pid` (of all its threads).
pub(crate) fn child_count(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .filter_map(std::result::Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .map(|children| children.split_whitespace().count())
        .sum()
}

/// The soft open-files limit of `pid` (`Max open files` in `/proc/PID/limits`), when known.
pub(crate) fn open_files_limit(pid: u32) -> Option<u64> {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    limits.lines().find_map(|line| line.strip_prefix("Max open files")?.split_whitespace().next()?.parse().ok())
}

/// A `Key:   1234 kB` line's number.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(key)?.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        let spin = std::time::Instant::now();
        while spin.elapsed().as_millis() < 50 {}
        assert!(cpu_ticks(pid).unwrap() > 0);
        assert!(clock_ticks() > 0);
    }

    #[test]
    fn the_machine_counts_busy_time_within_all_time() {
        let (busy_before, all_before) = machine_ticks().unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed().as_millis() < 100 {}
        let (busy_after, all_after) = machine_ticks().unwrap();
        assert!(busy_before <= all_before && busy_after <= all_after);
        // A tenth of a second of spinning is busy time on some core.
        assert!(busy_after > busy_before, "{busy_before} -> {busy_after}");
        assert!(all_after - all_before >= busy_after - busy_before);
    }

    #[test]
    fn meminfo_lines_parse() {
        assert_eq!(kib_field("MemTotal:       24684544 kB\nMemFree: 1 kB", "MemTotal:"), Some(24_684_544));
    }
}
