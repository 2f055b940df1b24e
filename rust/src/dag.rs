//! A dependency graph over job ids: edges point from a job to each of its prerequisites.
//!
//! Used for the cascade (every job transitively depending on a failed or cancelled one) and
//! for cycle checks. All traversals are iterative, so a 100,000-long chain cannot overflow
//! the stack.

use std::collections::VecDeque;

use rustc_hash::{FxHashMap, FxHashSet};

/// Find one cycle reachable from `starts`, following `next(node)` (a node's prerequisites).
///
/// Returns the cycle as `[a, b, ..., z]` meaning `a -> b -> ... -> z -> a` (each node depends
/// on the next). Iterative three-colour depth-first search, linear in the reachable graph.
pub(crate) fn find_cycle_from<'a, I, F>(starts: I, next: F) -> Option<Vec<i64>>
where
    I: IntoIterator<Item = i64>,
    F: Fn(i64) -> &'a [i64],
{
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state: FxHashMap<i64, u8> = FxHashMap::default();
    let mut stack: Vec<(i64, usize)> = Vec::new();
    for start in starts {
        if state.contains_key(&start) {
            continue;
        }
        state.insert(start, ON_PATH);
        stack.push((start, 0));
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            let successors = next(node);
            if top.1 == successors.len() {
                state.insert(node, DONE);
                stack.pop();
                continue;
            }
            let child = successors[top.1];
            top.1 += 1;
            match state.get(&child) {
                None => {
                    state.insert(child, ON_PATH);
                    stack.push((child, 0));
                }
                Some(&ON_PATH) => {
                    // A back edge closes a cycle: child -> ... -> node -> child.
                    let from = stack.iter().position(|&(n, _)| n == child)?;
                    return Some(stack[from..].iter().map(|&(n, _)| n).collect());
                }
                Some(_) => {}
            }
        }
    }
    None
}

/// Jobs and their prerequisite edges, with reverse edges for downstream walks.
#[derive(Debug, Default, Clone)]
pub struct DependencyGraph {
    /// job id -> its prerequisite ids, in insertion order.
    prerequisites: FxHashMap<i64, Vec<i64>>,
    /// prerequisite id -> the jobs depending on it, in insertion order.
    dependents: FxHashMap<i64, Vec<i64>>,
    /// Distinct (job, prerequisite) edges.
    edges: FxHashSet<(i64, i64)>,
    /// Jobs in the order they first got a prerequisite, so cycle search is deterministic.
    jobs: Vec<i64>,
}

impl DependencyGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record that `job_id` depends on `prerequisite_id`. Returns false for a duplicate edge.
    pub fn add_edge(&mut self, job_id: i64, prerequisite_id: i64) -> bool {
        if !self.edges.insert((job_id, prerequisite_id)) {
            return false;
        }
        let prereqs = self.prerequisites.entry(job_id).or_default();
        if prereqs.is_empty() {
            self.jobs.push(job_id);
        }
        prereqs.push(prerequisite_id);
        self.dependents
            .entry(prerequisite_id)
            .or_default()
            .push(job_id);
        true
    }

    /// Add many `(job_id, prerequisite_id)` edges.
    pub fn add_edges(&mut self, edges: &[(i64, i64)]) {
        self.edges.reserve(edges.len());
        for &(job, prereq) in edges {
            self.add_edge(job, prereq);
        }
    }

    /// Number of distinct edges.
    pub fn len(&self) -> usize {
        self.edges.len()
    }

    /// True when the graph has no edges.
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// Prerequisites of `job_id` (empty if unknown).
    pub fn prerequisites_of(&self, job_id: i64) -> &[i64] {
        self.prerequisites.get(&job_id).map_or(&[], Vec::as_slice)
    }

    /// Jobs depending directly on `job_id` (empty if none).
    pub fn dependents_of(&self, job_id: i64) -> &[i64] {
        self.dependents.get(&job_id).map_or(&[], Vec::as_slice)
    }

    /// Every job transitively depending on any of `roots`, excluding the roots, in
    /// breadth-first order (roots in the given order, dependents in insertion order).
    pub fn downstream(&self, roots: &[i64]) -> Vec<i64> {
        let mut seen: FxHashSet<i64> = FxHashSet::default();
        let mut queue: VecDeque<i64> = VecDeque::new();
        for &root in roots {
            if seen.insert(root) {
                queue.push_back(root);
            }
        }
        let mut out = Vec::new();
        while let Some(node) = queue.pop_front() {
            for &dependent in self.dependents_of(node) {
                if seen.insert(dependent) {
                    out.push(dependent);
                    queue.push_back(dependent);
                }
            }
        }
        out
    }

    /// Would giving `job_id` the extra `prerequisites` close a cycle? True for a self
    /// reference or when a prerequisite already (transitively) depends on `job_id`.
    pub fn would_create_cycle(&self, job_id: i64, prerequisites: &[i64]) -> bool {
        if prerequisites.contains(&job_id) {
            return true;
        }
        if prerequisites.is_empty() {
            return false;
        }
        let targets: FxHashSet<i64> = prerequisites.iter().copied().collect();
        let mut seen: FxHashSet<i64> = FxHashSet::default();
        let mut queue: VecDeque<i64> = VecDeque::from([job_id]);
        seen.insert(job_id);
        while let Some(node) = queue.pop_front() {
            for &dependent in self.dependents_of(node) {
                if targets.contains(&dependent) {
                    return true;
                }
                if seen.insert(dependent) {
                    queue.push_back(dependent);
                }
            }
        }
        false
    }

    /// One cycle in the graph as `[a, b, ..., z]` (`a` depends on `b`, ..., `z` on `a`), or
    /// `None` when the graph is acyclic.
    pub fn find_cycle(&self) -> Option<Vec<i64>> {
        find_cycle_from(self.jobs.iter().copied(), |n| self.prerequisites_of(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every consecutive pair (and the closing pair) of `cycle` must be an edge.
    fn assert_is_cycle(graph: &DependencyGraph, cycle: &[i64]) {
        assert!(!cycle.is_empty());
        for (i, &node) in cycle.iter().enumerate() {
            let next = cycle[(i + 1) % cycle.len()];
            assert!(
                graph.prerequisites_of(node).contains(&next),
                "{node} -> {next} is not an edge of {cycle:?}"
            );
        }
    }

    /// Deterministic xorshift so tests need no extra crate.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn len_counts_distinct_edges() {
        let mut g = DependencyGraph::new();
        assert!(g.is_empty());
        assert!(g.add_edge(2, 1));
        assert!(!g.add_edge(2, 1));
        g.add_edges(&[(3, 1), (3, 2), (3, 1)]);
        assert_eq!(g.len(), 3);
        assert_eq!(g.prerequisites_of(3), &[1, 2]);
        assert_eq!(g.dependents_of(1), &[2, 3]);
    }

    #[test]
    fn downstream_is_bfs_and_excludes_roots() {
        let mut g = DependencyGraph::new();
        // 2 and 3 depend on 1; 4 on 2; 5 on 4 and 3; 6 on 99 (unrelated).
        g.add_edges(&[(2, 1), (3, 1), (4, 2), (5, 4), (5, 3), (6, 99)]);
        assert_eq!(g.downstream(&[1]), vec![2, 3, 4, 5]);
        assert_eq!(g.downstream(&[2, 1]), vec![4, 3, 5]);
        assert_eq!(g.downstream(&[5]), Vec::<i64>::new());
        assert_eq!(g.downstream(&[]), Vec::<i64>::new());
        assert_eq!(g.downstream(&[42]), Vec::<i64>::new());
    }

    #[test]
    fn would_create_cycle_detects_self_and_transitive() {
        let mut g = DependencyGraph::new();
        g.add_edges(&[(2, 1), (3, 2)]);
        assert!(g.would_create_cycle(1, &[1]));
        assert!(g.would_create_cycle(1, &[3]));
        assert!(g.would_create_cycle(1, &[7, 2]));
        assert!(!g.would_create_cycle(3, &[1]));
        assert!(!g.would_create_cycle(4, &[3]));
        assert!(!g.would_create_cycle(1, &[]));
    }

    #[test]
    fn find_cycle_names_a_real_cycle() {
        let mut g = DependencyGraph::new();
        g.add_edges(&[(1, 2), (2, 3), (3, 4)]);
        assert_eq!(g.find_cycle(), None);
        g.add_edge(4, 2);
        let cycle = g.find_cycle().expect("cycle");
        assert_is_cycle(&g, &cycle);
        assert_eq!(cycle.len(), 3);

        let mut self_loop = DependencyGraph::new();
        self_loop.add_edge(7, 7);
        assert_eq!(self_loop.find_cycle(), Some(vec![7]));
    }

    #[test]
    fn long_chain_does_not_overflow_the_stack() {
        let n = 100_000;
        let mut g = DependencyGraph::new();
        let edges: Vec<(i64, i64)> = (1..n).map(|i| (i + 1, i)).collect();
        g.add_edges(&edges);
        assert_eq!(g.find_cycle(), None);
        let down = g.downstream(&[1]);
        assert_eq!(down.len(), (n - 1) as usize);
        assert_eq!(down[0], 2);
        assert!(g.would_create_cycle(1, &[n]));
        g.add_edge(1, n);
        let cycle = g.find_cycle().expect("closing the chain makes a cycle");
        assert_eq!(cycle.len(), n as usize);
        assert_is_cycle(&g, &cycle);
    }

    #[test]
    fn random_dag_is_acyclic_until_a_back_edge() {
        let n = 100_000_i64;
        let mut rng = Lcg(0x9E37_79B9_7F4A_7C15);
        let mut g = DependencyGraph::new();
        // Edges only from higher to lower ids: acyclic by construction.
        for job in 2..=n {
            for _ in 0..(rng.next() % 4) {
                let prereq = 1 + (rng.next() % (job as u64 - 1)) as i64;
                g.add_edge(job, prereq);
            }
        }
        assert_eq!(g.find_cycle(), None);
        // A low job depending on something downstream of it closes a cycle.
        let down = g.downstream(&[1]);
        let last = *down.last().expect("1 has dependents");
        assert!(g.would_create_cycle(1, &[last]));
        g.add_edge(1, last);
        let cycle = g.find_cycle().expect("cycle");
        assert_is_cycle(&g, &cycle);
    }
}
