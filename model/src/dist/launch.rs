//! Starting the ranks of a job on this machine: a free rendezvous port and the environment
//! of each rank.

use std::net::TcpListener;

use super::env::RankEnv;

/// A TCP port on 127.0.0.1 that was free a moment ago, for rank 0's rendezvous store.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// Starts `world_size` copies of the command `make(rank)` builds, each with its rank's
/// rendezvous variables on one local port; returns the children in rank order.
pub fn spawn_local_ranks(
    world_size: usize,
    mut make: impl FnMut(usize) -> std::process::Command,
) -> std::io::Result<Vec<std::process::Child>> {
    let port = free_port()?;
    let mut children = Vec::with_capacity(world_size);
    for rank in 0..world_size {
        let mut command = make(rank);
        command.envs(RankEnv::local_vars(rank, world_size, port));
        match command.spawn() {
            Ok(child) => children.push(child),
            Err(err) => {
                for mut started in children {
                    let _ = started.kill();
                    let _ = started.wait();
                }
                return Err(err);
            }
        }
    }
    Ok(children)
}
