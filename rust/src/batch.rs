//! Batch planning for `add_jobs`: a `depends_on` entry `-(k+1)` (a *placeholder*) names entry
//! `k` of the same batch, forward references included. The batch is validated as one graph and
//! ordered so that every prerequisite is inserted before the jobs depending on it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;

use crate::dag::find_cycle_from;
use crate::error::{CoreError, CoreResult, ErrorKind};

/// The `depends_on` lists of a batch in one flat buffer: entry `i` is
/// `ids[offsets[i]..offsets[i + 1]]`. Built with [`BatchDeps::push_id`] and
/// [`BatchDeps::end_entry`] (ids pushed after the last `end_entry` belong to no entry yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDeps {
    offsets: Vec<usize>,
    ids: Vec<i64>,
}

impl Default for BatchDeps {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchDeps {
    /// An empty batch.
    pub fn new() -> Self {
        Self {
            offsets: vec![0],
            ids: Vec::new(),
        }
    }

    /// Copy nested lists into the flat form.
    pub fn from_lists<L: AsRef<[i64]>>(lists: &[L]) -> Self {
        let mut deps = Self::new();
        deps.offsets.reserve(lists.len());
        for list in lists {
            deps.ids.extend_from_slice(list.as_ref());
            deps.end_entry();
        }
        deps
    }

    /// Reserve room for `entries` more entries.
    pub fn reserve(&mut self, entries: usize) {
        self.offsets.reserve(entries);
        self.ids.reserve(entries);
    }

    /// Append an id to the entry being built.
    pub fn push_id(&mut self, id: i64) {
        self.ids.push(id);
    }

    /// Close the entry being built.
    pub fn end_entry(&mut self) {
        self.offsets.push(self.ids.len());
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True for a batch without entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `depends_on` ids of entry `i`.
    pub fn entry(&self, i: usize) -> &[i64] {
        &self.ids[self.offsets[i]..self.offsets[i + 1]]
    }

    /// Every entry in order.
    pub fn entries(&self) -> impl Iterator<Item = &[i64]> + '_ {
        self.offsets.windows(2).map(move |w| &self.ids[w[0]..w[1]])
    }
}

/// Encode batch entry `index` as the placeholder id `-(index+1)`.
pub fn batch_dep_ref(index: i64) -> CoreResult<i64> {
    if index < 0 {
        return Err(CoreError::new(
            ErrorKind::Dependency,
            format!("batch_dep_ref: expected a non-negative integer index, got {index}"),
        ));
    }
    Ok(-(index + 1))
}

/// The batch index a placeholder points at, or `None` for a real (non-negative) job id.
pub fn placeholder_index(id: i64) -> Option<usize> {
    // -(id + 1) cannot overflow for any negative i64 (i64::MIN maps to i64::MAX).
    (id < 0).then(|| usize::try_from(-(id + 1)).unwrap_or(usize::MAX))
}

fn out_of_range(placeholder: i64, index: usize, size: usize) -> CoreError {
    CoreError::new(
        ErrorKind::UnknownPrerequisite,
        format!(
            "placeholder {placeholder} refers to batch[{index}] but the batch has {size} job(s)"
        ),
    )
}

/// Replace every placeholder `-(k+1)` with `ids[k]`, keep real ids, and drop duplicates while
/// keeping the first occurrence.
pub fn resolve_batch_refs(deps: &BatchDeps, ids: &[i64]) -> CoreResult<Vec<Vec<i64>>> {
    deps.entries()
        .map(|entry| {
            let mut out: Vec<i64> = Vec::with_capacity(entry.len());
            for &dep in entry {
                let id = match placeholder_index(dep) {
                    Some(k) => *ids.get(k).ok_or_else(|| out_of_range(dep, k, ids.len()))?,
                    None => dep,
                };
                // Dependency lists are short, so a linear scan beats hashing.
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            Ok(out)
        })
        .collect()
}

/// Label of a batch entry in messages.
fn batch_label(index: usize) -> String {
    format!("batch[{index}]")
}

fn cycle_error(labels: impl Iterator<Item = String>) -> CoreError {
    let mut labels: Vec<String> = labels.collect();
    if let Some(first) = labels.first().cloned() {
        labels.push(first);
    }
    CoreError::new(
        ErrorKind::Cycle,
        format!("dependency cycle: {}", labels.join(" -> ")),
    )
}

/// Validate a batch and return a topological insertion order of its indices.
///
/// `deps[i]` lists job `i`'s prerequisites: placeholders for batch entries, positive ids for
/// existing jobs. `existing_edges` maps existing job ids to their prerequisite ids, so cycles
/// running through existing jobs are caught too. Among entries that are ready at the same
/// time the lowest index goes first, so an already ordered batch comes back unchanged.
///
/// Errors: a placeholder outside the batch (`UnknownPrerequisite`), `0` as an id
/// (`Dependency`), a self reference or a cycle (`Cycle`, naming one cycle, `a -> b` meaning
/// "a depends on b"). Linear apart from the heap: O((n + e) log n).
pub fn plan_batch<S: BuildHasher>(
    deps: &BatchDeps,
    existing_edges: Option<&HashMap<i64, Vec<i64>, S>>,
) -> CoreResult<Vec<usize>> {
    let n = deps.len();
    // Pass 1: validate every reference (first error in input order) and count in-degrees.
    let mut indegree = vec![0_u32; n];
    let mut dependents_count = vec![0_u32; n];
    let mut has_existing = false;
    for (i, entry) in deps.entries().enumerate() {
        for &dep in entry {
            match placeholder_index(dep) {
                Some(k) if k >= n => return Err(out_of_range(dep, k, n)),
                Some(k) if k == i => {
                    return Err(CoreError::new(
                        ErrorKind::Cycle,
                        format!("job {} cannot depend on itself", batch_label(i)),
                    ))
                }
                Some(k) => {
                    indegree[i] += 1;
                    dependents_count[k] += 1;
                }
                None if dep == 0 => {
                    return Err(CoreError::new(
                        ErrorKind::Dependency,
                        format!("depends_on of {}: 0 is not a job id", batch_label(i)),
                    ))
                }
                None => has_existing = true,
            }
        }
    }

    // Reverse edges (prerequisite -> dependents) in compressed-row form.
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0_usize);
    for &count in &dependents_count {
        offsets.push(offsets.last().copied().unwrap_or(0) + count as usize);
    }
    let mut fill = offsets.clone();
    let mut dependents = vec![0_usize; offsets[n]];
    for (i, entry) in deps.entries().enumerate() {
        for &dep in entry {
            if let Some(k) = placeholder_index(dep) {
                dependents[fill[k]] = i;
                fill[k] += 1;
            }
        }
    }

    // Kahn's algorithm; the min-heap keeps input order among ready entries.
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(k)) = ready.pop() {
        order.push(k);
        for &i in &dependents[offsets[k]..offsets[k + 1]] {
            indegree[i] -= 1;
            if indegree[i] == 0 {
                ready.push(Reverse(i));
            }
        }
    }
    if order.len() < n {
        let cycle = batch_cycle(deps, &indegree);
        return Err(cycle_error(cycle.into_iter().map(batch_label)));
    }

    // Cycles through existing jobs: only existing jobs can be on them (an existing job cannot
    // depend on a job that is not written yet), so search from the batch's real prerequisites.
    if let (true, Some(edges)) = (has_existing, existing_edges) {
        if !edges.is_empty() {
            let starts = deps.entries().flatten().copied().filter(|&d| d > 0);
            let next = |id: i64| edges.get(&id).map_or(&[][..], Vec::as_slice);
            if let Some(cycle) = find_cycle_from(starts, next) {
                return Err(cycle_error(cycle.into_iter().map(|id| format!("job {id}"))));
            }
        }
    }
    Ok(order)
}

/// One cycle among the entries Kahn's algorithm could not place (`indegree > 0`).
///
/// Every such entry still has an unplaced prerequisite, so following unplaced prerequisites
/// from any of them must revisit an entry; the revisited stretch is a cycle. Linear time.
fn batch_cycle(deps: &BatchDeps, indegree: &[u32]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let mut position = vec![UNSEEN; deps.len()];
    let mut path: Vec<usize> = Vec::new();
    let mut node = indegree.iter().position(|&d| d > 0).unwrap_or(0);
    loop {
        if position[node] != UNSEEN {
            return path.split_off(position[node]);
        }
        position[node] = path.len();
        path.push(node);
        let next = deps
            .entry(node)
            .iter()
            .filter_map(|&dep| placeholder_index(dep))
            .find(|&k| indegree[k] > 0);
        match next {
            Some(k) => node = k,
            // Unreachable for a Kahn remainder; return what we have rather than panic.
            None => return path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustc_hash::FxHashMap;

    fn r(index: usize) -> i64 {
        batch_dep_ref(index as i64).unwrap()
    }

    fn plan(deps: &[Vec<i64>]) -> CoreResult<Vec<usize>> {
        plan_batch::<rustc_hash::FxBuildHasher>(&BatchDeps::from_lists(deps), None)
    }

    fn plan_with(deps: &[Vec<i64>], edges: &FxHashMap<i64, Vec<i64>>) -> CoreResult<Vec<usize>> {
        plan_batch(&BatchDeps::from_lists(deps), Some(edges))
    }

    fn resolve(deps: &[Vec<i64>], ids: &[i64]) -> CoreResult<Vec<Vec<i64>>> {
        resolve_batch_refs(&BatchDeps::from_lists(deps), ids)
    }

    #[test]
    fn batch_deps_flat_form() {
        let mut deps = BatchDeps::new();
        assert!(deps.is_empty());
        deps.push_id(-2);
        deps.push_id(7);
        deps.end_entry();
        deps.end_entry();
        assert_eq!(deps.len(), 2);
        assert_eq!(deps.entry(0), &[-2, 7]);
        assert_eq!(deps.entry(1), &[] as &[i64]);
        assert_eq!(deps, BatchDeps::from_lists(&[vec![-2, 7], vec![]]));
        assert_eq!(deps.entries().count(), 2);
    }

    /// Every prerequisite placeholder appears before its dependent in `order`.
    fn assert_topological(deps: &[Vec<i64>], order: &[usize]) {
        let mut pos = vec![usize::MAX; deps.len()];
        for (p, &i) in order.iter().enumerate() {
            assert_eq!(pos[i], usize::MAX, "index {i} appears twice");
            pos[i] = p;
        }
        assert!(
            pos.iter().all(|&p| p != usize::MAX),
            "order misses an entry"
        );
        for (i, entry) in deps.iter().enumerate() {
            for &dep in entry {
                if let Some(k) = placeholder_index(dep) {
                    assert!(pos[k] < pos[i], "batch[{k}] must come before batch[{i}]");
                }
            }
        }
    }

    /// Parse "batch[a] -> batch[b] -> ... -> batch[a]" and check each arrow is a real edge.
    fn assert_names_batch_cycle(deps: &[Vec<i64>], message: &str) {
        let nodes: Vec<usize> = message
            .split("batch[")
            .skip(1)
            .map(|s| s.split(']').next().unwrap().parse().unwrap())
            .collect();
        assert!(nodes.len() >= 2, "{message}");
        assert_eq!(nodes.first(), nodes.last(), "{message}");
        for pair in nodes.windows(2) {
            assert!(deps[pair[0]].contains(&r(pair[1])), "{message}");
        }
    }

    struct XorShift(u64);
    impl XorShift {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % bound
        }
    }

    #[test]
    fn batch_dep_ref_encodes_and_rejects_negative() {
        assert_eq!(batch_dep_ref(0), Ok(-1));
        assert_eq!(batch_dep_ref(4), Ok(-5));
        let err = batch_dep_ref(-1).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dependency);
        assert!(err.message.contains("-1"));
        assert_eq!(placeholder_index(-1), Some(0));
        assert_eq!(placeholder_index(7), None);
        assert_eq!(placeholder_index(i64::MIN), Some(i64::MAX as usize));
    }

    #[test]
    fn resolve_replaces_placeholders_and_dedupes() {
        let ids = [100, 101, 102];
        assert_eq!(
            resolve(&[vec![-1, -3], vec![7, -2, 7, -2], vec![]], &ids),
            Ok(vec![vec![100, 102], vec![7, 101], vec![]])
        );
        assert_eq!(resolve(&[vec![-1, 100]], &ids), Ok(vec![vec![100]]));
        let err = resolve(&[vec![-4]], &ids).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnknownPrerequisite);
        assert!(err.message.contains("-4") && err.message.contains('3'));
        let err = resolve(&[vec![i64::MIN]], &ids).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnknownPrerequisite);
    }

    #[test]
    fn ordered_batch_is_unchanged_and_forward_refs_reorder() {
        assert_eq!(plan(&[]), Ok(vec![]));
        assert_eq!(
            plan(&[vec![], vec![r(0)], vec![r(0), 5]]),
            Ok(vec![0, 1, 2])
        );
        // batch[0] depends on batch[2] (forward reference), batch[1] is free.
        let deps = vec![vec![r(2)], vec![], vec![]];
        assert_eq!(plan(&deps), Ok(vec![1, 2, 0]));
        let deps = vec![vec![r(1)], vec![r(2)], vec![]];
        assert_eq!(plan(&deps), Ok(vec![2, 1, 0]));
    }

    #[test]
    fn rejects_out_of_range_self_and_zero() {
        let err = plan(&[vec![], vec![r(2)]]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnknownPrerequisite);
        assert_eq!(
            err.message,
            "placeholder -3 refers to batch[2] but the batch has 2 job(s)"
        );
        let err = plan(&[vec![], vec![r(1)]]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cycle);
        assert_eq!(err.message, "job batch[1] cannot depend on itself");
        let err = plan(&[vec![0]]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Dependency);
    }

    #[test]
    fn names_a_cycle_inside_the_batch() {
        let deps = vec![vec![r(2)], vec![], vec![r(0)]];
        let err = plan(&deps).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cycle);
        assert_eq!(
            err.message,
            "dependency cycle: batch[0] -> batch[2] -> batch[0]"
        );
        // A cycle with a tail hanging off it: only the cycle is named.
        let deps = vec![vec![r(1)], vec![r(2)], vec![r(3)], vec![r(1)], vec![r(0)]];
        let err = plan(&deps).unwrap_err();
        assert_names_batch_cycle(&deps, &err.message);
        assert_eq!(
            err.message,
            "dependency cycle: batch[1] -> batch[2] -> batch[3] -> batch[1]"
        );
    }

    #[test]
    fn names_a_cycle_through_existing_jobs() {
        let mut edges: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
        edges.insert(10, vec![11]);
        edges.insert(11, vec![12]);
        let deps = vec![vec![10], vec![r(0), 12]];
        assert_eq!(plan_with(&deps, &edges), Ok(vec![0, 1]));
        edges.insert(12, vec![10]);
        let err = plan_with(&deps, &edges).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cycle);
        assert_eq!(
            err.message,
            "dependency cycle: job 10 -> job 11 -> job 12 -> job 10"
        );
        // An unrelated cycle among existing jobs is not the batch's problem.
        let deps = vec![vec![99]];
        assert_eq!(plan_with(&deps, &edges), Ok(vec![0]));
    }

    #[test]
    fn chain_of_100k_forward_references() {
        let n = 100_000;
        // batch[i] depends on batch[i+1]: the whole order is reversed.
        let deps: Vec<Vec<i64>> = (0..n)
            .map(|i| if i + 1 < n { vec![r(i + 1)] } else { vec![] })
            .collect();
        let order = plan(&deps).unwrap();
        assert_eq!(order[0], n - 1);
        assert_eq!(order[n - 1], 0);
        assert_topological(&deps, &order);
        // Closing the chain makes a 100k-long cycle, named without recursion.
        let mut cyclic = deps.clone();
        cyclic[n - 1] = vec![r(0)];
        let err = plan(&cyclic).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cycle);
        assert_names_batch_cycle(&cyclic, &err.message);
    }

    #[test]
    fn random_100k_dag_in_shuffled_order() {
        let n = 100_000_usize;
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        // Build a DAG over a random permutation so references go both forward and backward.
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            perm.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut deps: Vec<Vec<i64>> = vec![Vec::new(); n];
        for rank in 1..n {
            for _ in 0..rng.below(4) {
                let earlier = rng.below(rank as u64) as usize;
                deps[perm[rank]].push(r(perm[earlier]));
            }
            if rng.below(10) == 0 {
                deps[perm[rank]].push(1 + rng.below(1000) as i64);
            }
        }
        let order = plan(&deps).unwrap();
        assert_topological(&deps, &order);
        // The first- and last-ranked entries depending on each other close a cycle, which
        // must be found and named among 100k entries.
        deps[perm[n - 1]].push(r(perm[0]));
        deps[perm[0]].push(r(perm[n - 1]));
        let err = plan(&deps).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Cycle);
        assert_names_batch_cycle(&deps, &err.message);
    }
}
