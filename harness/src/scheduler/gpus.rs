//! GPU discovery and leases of specific device ids.

use std::collections::BTreeSet;

/// Parses `--gpus auto|none|0,1`; `auto` asks `nvidia-smi`.
pub fn resolve(spec: &str) -> anyhow::Result<Vec<u32>> {
    match spec.trim() {
        "auto" => Ok(discover()),
        "none" | "" => Ok(Vec::new()),
        list => list
            .split(',')
            .map(|id| {
                id.trim().parse::<u32>().map_err(|_| {
                    anyhow::anyhow!("--gpus {spec}: `{id}` is not a device id (use auto, none or a list like 0,1)")
                })
            })
            .collect(),
    }
}

/// Device ids `nvidia-smi` lists; none when it is missing or fails.
fn discover() -> Vec<u32> {
    let Ok(output) = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=index", "--format=csv,noheader"])
        .output()
    else {
        return Vec::new();
    };
    if !output.status.success() {
        return Vec::new();
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The pool of free device ids; a stage leases specific ids and returns them when it ends.
#[derive(Debug, Clone)]
pub struct GpuPool {
    all: Vec<u32>,
    free: BTreeSet<u32>,
}

impl GpuPool {
    /// A pool of the given ids, all free.
    pub fn new(ids: Vec<u32>) -> GpuPool {
        GpuPool {
            free: ids.iter().copied().collect(),
            all: ids,
        }
    }

    /// Number of devices in the pool.
    pub fn total(&self) -> usize {
        self.all.len()
    }

    /// Leases `count` free ids (lowest first), or `None` if not enough are free now.
    pub fn lease(&mut self, count: usize) -> Option<Vec<u32>> {
        if self.free.len() < count {
            return None;
        }
        let ids: Vec<u32> = self.free.iter().copied().take(count).collect();
        for id in &ids {
            self.free.remove(id);
        }
        Some(ids)
    }

    /// Returns leased ids to the pool.
    pub fn release(&mut self, ids: &[u32]) {
        self.free.extend(ids.iter().copied());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_disjoint_until_released() {
        let mut pool = GpuPool::new(resolve("0,1").unwrap());
        let a = pool.lease(1).unwrap();
        let b = pool.lease(1).unwrap();
        assert_ne!(a, b);
        assert_eq!(pool.lease(1), None);
        pool.release(&a);
        assert_eq!(pool.lease(1), Some(a));
        assert!(resolve("x").is_err());
        assert!(resolve("none").unwrap().is_empty());
    }
}
