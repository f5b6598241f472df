//! The rendezvous variables a launcher gives each rank, under PyTorch's names.

use anyhow::Context;

/// Global rank of this process.
pub const RANK: &str = "RANK";
/// Number of processes in the job.
pub const WORLD_SIZE: &str = "WORLD_SIZE";
/// Rank of this process on its machine (its device index).
pub const LOCAL_RANK: &str = "LOCAL_RANK";
/// Host of rank 0, which serves the rendezvous store.
pub const MASTER_ADDR: &str = "MASTER_ADDR";
/// Port of the rendezvous store.
pub const MASTER_PORT: &str = "MASTER_PORT";

/// Where this process stands in a data-parallel job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankEnv {
    /// Global rank, `0..world_size`.
    pub rank: usize,
    /// Number of processes.
    pub world_size: usize,
    /// Rank on this machine.
    pub local_rank: usize,
    /// Host of rank 0.
    pub master_addr: String,
    /// Port of the rendezvous store on `master_addr`.
    pub master_port: u16,
}

impl RankEnv {
    /// The job described by the environment: None when `WORLD_SIZE` is unset or 1 (a single
    /// process needs no rendezvous); an error naming the variable when one is missing or
    /// malformed.
    pub fn from_env() -> anyhow::Result<Option<RankEnv>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`RankEnv::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<RankEnv>> {
        let world_size = match lookup(WORLD_SIZE) {
            None => return Ok(None),
            Some(text) => parse_count(WORLD_SIZE, &text)?,
        };
        match world_size {
            1 => return Ok(None),
            0 => anyhow::bail!(
                "environment variable {WORLD_SIZE}=0: a job needs at least one process"
            ),
            _ => {}
        }
        let need = |name: &str| {
            lookup(name).with_context(|| {
                format!("{WORLD_SIZE}={world_size} but {name} is not set: a data-parallel launch sets {RANK}, {MASTER_ADDR} and {MASTER_PORT} too")
            })
        };
        let rank = parse_count(RANK, &need(RANK)?)?;
        anyhow::ensure!(
            rank < world_size,
            "environment variable {RANK}={rank} is not below {WORLD_SIZE}={world_size}"
        );
        let master_addr = need(MASTER_ADDR)?;
        let port = need(MASTER_PORT)?;
        let master_port = port.trim().parse::<u16>().with_context(|| {
            format!("environment variable {MASTER_PORT}={port:?} is not a port number")
        })?;
        let local_rank = match lookup(LOCAL_RANK) {
            Some(text) => parse_count(LOCAL_RANK, &text)?,
            None => rank,
        };
        Ok(Some(RankEnv {
            rank,
            world_size,
            local_rank,
            master_addr,
            master_port,
        }))
    }

    /// The variables that describe rank `rank` of a `world_size`-process job on one machine
    /// whose rendezvous is `127.0.0.1:port`, for a local launcher.
    pub fn local_vars(rank: usize, world_size: usize, port: u16) -> Vec<(&'static str, String)> {
        vec![
            (RANK, rank.to_string()),
            (LOCAL_RANK, rank.to_string()),
            (WORLD_SIZE, world_size.to_string()),
            (MASTER_ADDR, "127.0.0.1".to_string()),
            (MASTER_PORT, port.to_string()),
        ]
    }

    /// Whether this process is rank 0, the one that writes checkpoints, events and metrics.
    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }
}

/// `value` of variable `name` as a non-negative integer, or an error naming both.
fn parse_count(name: &str, value: &str) -> anyhow::Result<usize> {
    value.trim().parse::<usize>().with_context(|| {
        format!("environment variable {name}={value:?} is not a non-negative integer")
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> anyhow::Result<Option<RankEnv>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RankEnv::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn one_process_needs_no_rendezvous() {
        assert_eq!(env_of(&[]).unwrap(), None);
        assert_eq!(env_of(&[(WORLD_SIZE, "1"), (RANK, "0")]).unwrap(), None);
    }

    #[test]
    fn local_vars_round_trip() {
        let vars = RankEnv::local_vars(1, 2, 29501);
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let env = env_of(&pairs).unwrap().unwrap();
        assert_eq!(
            env,
            RankEnv {
                rank: 1,
                world_size: 2,
                local_rank: 1,
                master_addr: "127.0.0.1".into(),
                master_port: 29501
            }
        );
        assert!(!env.is_leader());
    }

    #[test]
    fn bad_variables_are_named() {
        let err = env_of(&[(WORLD_SIZE, "2"), (RANK, "0")]).unwrap_err();
        assert!(format!("{err:#}").contains(MASTER_ADDR), "{err:#}");
        let err = env_of(&[
            (WORLD_SIZE, "2"),
            (RANK, "2"),
            (MASTER_ADDR, "h"),
            (MASTER_PORT, "1"),
        ])
        .unwrap_err();
        assert!(format!("{err:#}").contains("RANK=2"), "{err:#}");
        let err = env_of(&[
            (WORLD_SIZE, "2"),
            (RANK, "0"),
            (MASTER_ADDR, "h"),
            (MASTER_PORT, "99999"),
        ])
        .unwrap_err();
        assert!(format!("{err:#}").contains(MASTER_PORT), "{err:#}");
    }
}
