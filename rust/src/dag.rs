//! Cycle search over prerequisite edges, used by batch planning (cycles inside a batch and
//! through existing jobs). Iterative, so a 100,000-long chain cannot overflow the stack.

use rustc_hash::FxHashMap;

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Prerequisite lists by job, in insertion order (a test stand-in for the batch's graph).
    #[derive(Default)]
    struct Edges {
        prerequisites: FxHashMap<i64, Vec<i64>>,
        jobs: Vec<i64>,
    }

    impl Edges {
        fn add(&mut self, job: i64, prerequisite: i64) {
            let list = self.prerequisites.entry(job).or_default();
            if list.is_empty() {
                self.jobs.push(job);
            }
            list.push(prerequisite);
        }

        fn of(&self, job: i64) -> &[i64] {
            self.prerequisites.get(&job).map_or(&[], Vec::as_slice)
        }

        fn find_cycle(&self) -> Option<Vec<i64>> {
            find_cycle_from(self.jobs.iter().copied(), |n| self.of(n))
        }

        /// Every consecutive pair (and the closing pair) of `cycle` must be an edge.
        fn assert_is_cycle(&self, cycle: &[i64]) {
            assert!(!cycle.is_empty());
            for (i, &node) in cycle.iter().enumerate() {
                let next = cycle[(i + 1) % cycle.len()];
                assert!(
                    self.of(node).contains(&next),
                    "{node} -> {next} is not an edge of {cycle:?}"
                );
            }
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
    fn find_cycle_names_a_real_cycle() {
        let mut g = Edges::default();
        for (job, prereq) in [(1, 2), (2, 3), (3, 4)] {
            g.add(job, prereq);
        }
        assert_eq!(g.find_cycle(), None);
        g.add(4, 2);
        let cycle = g.find_cycle().expect("cycle");
        g.assert_is_cycle(&cycle);
        assert_eq!(cycle.len(), 3);

        let mut self_loop = Edges::default();
        self_loop.add(7, 7);
        assert_eq!(self_loop.find_cycle(), Some(vec![7]));
    }

    #[test]
    fn long_chain_does_not_overflow_the_stack() {
        let n = 100_000;
        let mut g = Edges::default();
        for i in 1..n {
            g.add(i + 1, i);
        }
        assert_eq!(g.find_cycle(), None);
        g.add(1, n);
        let cycle = g.find_cycle().expect("closing the chain makes a cycle");
        assert_eq!(cycle.len(), n as usize);
        g.assert_is_cycle(&cycle);
    }

    #[test]
    fn random_dag_is_acyclic_until_a_back_edge() {
        let n = 100_000_i64;
        let mut rng = Lcg(0x9E37_79B9_7F4A_7C15);
        let mut g = Edges::default();
        // Edges only from higher to lower ids: acyclic by construction.
        for job in 2..=n {
            for _ in 0..(rng.next() % 4) {
                let prereq = 1 + (rng.next() % (job as u64 - 1)) as i64;
                g.add(job, prereq);
            }
        }
        assert_eq!(g.find_cycle(), None);
        // With a chain n -> n-1 -> ... -> 1, job 1 depending on n closes a cycle.
        for job in 1..n {
            g.add(job + 1, job);
        }
        g.add(1, n);
        let cycle = g.find_cycle().expect("cycle");
        g.assert_is_cycle(&cycle);
    }
}
