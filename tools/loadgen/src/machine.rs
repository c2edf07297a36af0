//! What the whole machine spent during a run, from the first line of `/proc/stat` (Linux):
//! the CPU time of every process — the suite, PostgreSQL, Redis and this generator, which share
//! the cores — per answered order, and the share of time the hypervisor gave to other guests
//! (steal). Throughput on a shared host moves with its neighbours; CPU per order and steal show
//! whether a run was disturbed, and CPU per order compares two builds when throughput cannot.

/// Cumulative CPU time of all cores, in the kernel's `USER_HZ` ticks.
#[derive(Debug, Clone, Copy)]
pub struct CpuTimes {
    busy: u64,
    idle: u64,
    steal: u64,
}

/// `/proc/stat` counts in `USER_HZ`, which Linux fixes at 100 per second on every architecture.
const MICROS_PER_TICK: f64 = 10_000.0;

/// The machine's CPU times now; `None` where `/proc/stat` is not there or not understood.
pub fn sample() -> Option<CpuTimes> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse(stat.lines().next()?)
}

/// `cpu  user nice system idle iowait irq softirq steal guest guest_nice` (guest time is
/// already inside user and nice).
fn parse(line: &str) -> Option<CpuTimes> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let ticks: Vec<u64> = fields.map(str::parse).collect::<Result<_, _>>().ok()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal, ..] = ticks[..] else {
        return None;
    };
    Some(CpuTimes {
        busy: user + nice + system + irq + softirq,
        idle: idle + iowait,
        steal,
    })
}

/// The machine's use between two samples.
#[derive(Debug, Clone, Copy)]
pub struct MachineUse {
    /// CPU time of all processes per answered order, microseconds.
    pub busy_micros_per_answer: f64,
    /// Steal as a share of all the cores' time, percent.
    pub steal_percent: f64,
}

pub fn between(before: CpuTimes, after: CpuTimes, answers: u64) -> Option<MachineUse> {
    let busy = after.busy.checked_sub(before.busy)?;
    let idle = after.idle.checked_sub(before.idle)?;
    let steal = after.steal.checked_sub(before.steal)?;
    let total = busy + idle + steal;
    if answers == 0 || total == 0 {
        return None;
    }
    Some(MachineUse {
        busy_micros_per_answer: busy as f64 * MICROS_PER_TICK / answers as f64,
        steal_percent: steal as f64 * 100.0 / total as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_idle_and_steal_come_from_their_columns() {
        let before = parse("cpu  100 5 20 1000 10 1 2 3 0 0").unwrap();
        let after = parse("cpu  300 5 70 1500 10 11 2 103 0 0").unwrap();
        let used = between(before, after, 100).unwrap();
        // 200 user + 50 system + 10 irq ticks of 10 ms for 100 answers.
        assert_eq!(used.busy_micros_per_answer, 26_000.0);
        // 100 steal ticks of 260 busy + 500 idle + 100 steal.
        assert!((used.steal_percent - 100.0 * 100.0 / 860.0).abs() < 1e-9);
    }

    #[test]
    fn an_unknown_line_or_no_answers_give_nothing() {
        assert!(parse("intr 1 2 3").is_none());
        assert!(parse("cpu  1 2 3").is_none());
        let times = parse("cpu  1 2 3 4 5 6 7 8").unwrap();
        assert!(between(times, times, 0).is_none());
    }
}
