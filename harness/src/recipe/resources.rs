//! What a stage asks of the machine: GPUs, data-parallel processes, nodes, GPU memory and a
//! time limit (not in the key).

use serde::Serialize;
use std::time::Duration;

/// Resources a stage requests.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Resources {
    /// Number of GPUs per node (0: runs on CPU).
    pub gpus: u32,
    /// Data-parallel worker processes per node (`processes`; unset: one per GPU, at least
    /// one). Set it to run several ranks on the CPU.
    pub processes: Option<u32>,
    /// Nodes the stage's ranks spread over (`nodes`; unset: one), each running
    /// [`Resources::ranks_per_node`] of them. Only the Slurm backend runs more than one.
    pub nodes: Option<u32>,
    /// GPU memory the stage needs, in GiB, for packing small stages.
    pub gpu_mem_gb: Option<f64>,
    /// Wall-clock limit.
    pub time_limit: Option<Duration>,
}

impl Resources {
    /// How many worker processes (data-parallel ranks) the stage runs as, over all its nodes.
    pub fn ranks(&self) -> u32 {
        self.ranks_per_node() * self.nodes()
    }

    /// How many of its ranks run on each of its nodes.
    pub fn ranks_per_node(&self) -> u32 {
        self.processes.unwrap_or(self.gpus).max(1)
    }

    /// How many nodes its ranks spread over (at least 1).
    pub fn nodes(&self) -> u32 {
        self.nodes.unwrap_or(1).max(1)
    }
}

/// The accepted spellings of a time limit, for messages.
pub(crate) const TIME_LIMIT_FORMATS: &str =
    "`HH:MM:SS`, `D-HH:MM:SS`, or a number with a unit: `90m`, `2h`, `45s`, `1d`";

/// Parses a time limit: `HH:MM:SS`, `D-HH:MM:SS`, or `<number><s|m|h|d>`.
pub(crate) fn parse_time_limit(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(number) = text.strip_suffix(['s', 'm', 'h', 'd']) {
        let unit = match text.chars().last()? {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            _ => 86400.0,
        };
        let amount: f64 = number.trim().parse().ok()?;
        return (amount.is_finite() && amount > 0.0)
            .then(|| Duration::from_secs_f64(amount * unit));
    }
    let (days, clock) = match text.split_once('-') {
        Some((days, clock)) => (days.parse::<u64>().ok()?, clock),
        None => (0, text),
    };
    let mut parts = clock.split(':');
    let (Some(hours), Some(minutes), Some(seconds), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if minutes.len() != 2 || seconds.len() != 2 {
        return None;
    }
    let (hours, minutes, seconds): (u64, u64, u64) = (
        hours.parse().ok()?,
        minutes.parse().ok()?,
        seconds.parse().ok()?,
    );
    if minutes >= 60 || seconds >= 60 {
        return None;
    }
    let total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds;
    (total > 0).then(|| Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_are_the_ranks_of_a_node_times_the_nodes() {
        let layout = |gpus, processes, nodes| Resources {
            gpus,
            processes,
            nodes,
            ..Resources::default()
        };
        let counts = |r: Resources| (r.ranks_per_node(), r.nodes(), r.ranks());
        assert_eq!(counts(layout(0, None, None)), (1, 1, 1));
        assert_eq!(counts(layout(0, None, Some(2))), (1, 2, 2));
        assert_eq!(counts(layout(0, Some(2), Some(2))), (2, 2, 4));
        assert_eq!(counts(layout(4, None, Some(3))), (4, 3, 12));
    }

    #[test]
    fn time_limits_parse_in_both_styles() {
        let secs = |text| parse_time_limit(text).map(|limit| limit.as_secs());
        assert_eq!(secs("01:30:00"), Some(5400));
        assert_eq!(secs("100:00:05"), Some(360_005));
        assert_eq!(secs("1-02:00:00"), Some(93_600));
        assert_eq!(secs("90m"), Some(5400));
        assert_eq!(secs("2h"), Some(7200));
        assert_eq!(secs("1.5h"), Some(5400));
        assert_eq!(secs("45s"), Some(45));
        assert_eq!(secs("1d"), Some(86_400));
        for bad in [
            "", "90", "1:30", "01:60:00", "0m", "-5m", "abc", "00:00:00", "1:2:3:4",
        ] {
            assert_eq!(secs(bad), None, "{bad}");
        }
    }
}
