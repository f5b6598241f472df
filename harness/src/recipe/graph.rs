//! The `needs` graph between base stages: references, cycles and a topological order.

use super::error::{ErrorKind, RecipeError};
use super::location::Location;
use super::provenance::quoted_list;

/// A base stage as the graph sees it: its name and its `needs` entries with their locations.
pub(crate) struct GraphNode<'a> {
    /// The base stage name.
    pub name: &'a str,
    /// The stages it needs, each with the location of its entry.
    pub needs: &'a [(String, Location)],
}

/// Checks every `needs` entry and returns the indices of `nodes` in a dependency order that
/// keeps file order wherever the dependencies allow.
pub(crate) fn order(nodes: &[GraphNode<'_>]) -> Result<Vec<usize>, RecipeError> {
    let index_of = |name: &str| nodes.iter().position(|node| node.name == name);
    let mut edges: Vec<Vec<(usize, &Location)>> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let mut targets = Vec::with_capacity(node.needs.len());
        for (need, at) in node.needs {
            let target = index_of(need).ok_or_else(|| unknown_need(node.name, need, at, nodes))?;
            if targets.iter().any(|(seen, _)| *seen == target) {
                return Err(RecipeError::at(
                    ErrorKind::InvalidValue,
                    at,
                    format!(
                        "stage `{need}` is listed twice in `stage.{}.needs`",
                        node.name
                    ),
                )
                .help("list each needed stage once"));
            }
            targets.push((target, at));
        }
        edges.push(targets);
    }
    check_acyclic(nodes, &edges)?;
    Ok(stable_topological_order(&edges))
}

fn unknown_need(stage: &str, need: &str, at: &Location, nodes: &[GraphNode<'_>]) -> RecipeError {
    let names: Vec<&str> = nodes.iter().map(|node| node.name).collect();
    RecipeError::at(
        ErrorKind::UnknownNeeds,
        at,
        format!("stage `{stage}` needs `{need}`, which is not a stage of this recipe"),
    )
    .help(format!(
        "`needs` takes stage names without matrix suffix; stages: {}",
        quoted_list(&names)
    ))
}

/// Fails with the first cycle found (searching in file order), listing its stages.
fn check_acyclic(
    nodes: &[GraphNode<'_>],
    edges: &[Vec<(usize, &Location)>],
) -> Result<(), RecipeError> {
    let mut search = CycleSearch {
        edges,
        done: vec![false; nodes.len()],
        path: Vec::new(),
        path_edges: Vec::new(),
    };
    for start in 0..nodes.len() {
        if search.done[start] {
            continue;
        }
        if let Some((cycle, at)) = search.visit(start) {
            let names: Vec<&str> = cycle
                .iter()
                .chain(cycle.first())
                .map(|&node| nodes[node].name)
                .collect();
            return Err(RecipeError::at(
                ErrorKind::NeedsCycle,
                at,
                format!("cycle in `needs`: {}", names.join(" -> ")),
            )
            .help("stages cannot need themselves, directly or through others: remove one of these `needs` entries"));
        }
    }
    Ok(())
}

/// Depth-first search for a cycle, remembering the `needs` entry of every step taken.
struct CycleSearch<'e, 'l> {
    edges: &'e [Vec<(usize, &'l Location)>],
    done: Vec<bool>,
    path: Vec<usize>,
    path_edges: Vec<&'l Location>,
}

impl<'l> CycleSearch<'_, 'l> {
    /// The stages of a cycle reachable from `node` and the location of its first entry.
    fn visit(&mut self, node: usize) -> Option<(Vec<usize>, &'l Location)> {
        self.path.push(node);
        for &(next, at) in &self.edges[node] {
            if let Some(start) = self.path.iter().position(|&open| open == next) {
                let first_entry = self.path_edges.get(start).copied().unwrap_or(at);
                return Some((self.path[start..].to_vec(), first_entry));
            }
            if !self.done[next] {
                self.path_edges.push(at);
                if let Some(found) = self.visit(next) {
                    return Some(found);
                }
                self.path_edges.pop();
            }
        }
        self.path.pop();
        self.done[node] = true;
        None
    }
}

/// Kahn's algorithm, always taking the earliest ready stage in file order.
fn stable_topological_order(edges: &[Vec<(usize, &Location)>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut done = vec![false; edges.len()];
    let mut order = Vec::with_capacity(edges.len());
    while let Some(next) = (0..edges.len()).find(|&node| !done[node] && waiting[node] == 0) {
        done[next] = true;
        order.push(next);
        for (node, targets) in edges.iter().enumerate() {
            if targets.iter().any(|(target, _)| *target == next) {
                waiting[node] -= 1;
            }
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn at(line: usize) -> Location {
        Location {
            file: Path::new("r.toml").to_path_buf(),
            line,
            col: 1,
        }
    }

    fn needs(names: &[(&str, usize)]) -> Vec<(String, Location)> {
        names
            .iter()
            .map(|(name, line)| (name.to_string(), at(*line)))
            .collect()
    }

    #[test]
    fn order_puts_needed_stages_first_and_keeps_file_order() {
        let a = needs(&[("c", 1)]);
        let none = needs(&[]);
        let nodes = [
            GraphNode {
                name: "a",
                needs: &a,
            },
            GraphNode {
                name: "b",
                needs: &none,
            },
            GraphNode {
                name: "c",
                needs: &none,
            },
        ];
        assert_eq!(order(&nodes).unwrap(), [1, 2, 0]);
    }

    #[test]
    fn cycles_are_listed() {
        let a = needs(&[("b", 3)]);
        let b = needs(&[("a", 7)]);
        let nodes = [
            GraphNode {
                name: "a",
                needs: &a,
            },
            GraphNode {
                name: "b",
                needs: &b,
            },
        ];
        let error = order(&nodes).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NeedsCycle);
        assert!(error.message.contains("a -> b -> a"), "{error}");
        assert_eq!(error.location.unwrap().line, 3);
    }
}
