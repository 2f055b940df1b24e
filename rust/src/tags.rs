//! Tag matching with set semantics (order and duplicates never matter).
//!
//! One [`TagQuery`] is built per query and then matched against many jobs' tag lists, so the
//! query's hash index is built once.

use std::str::FromStr;

use rustc_hash::FxHashMap;

use crate::error::{CoreError, CoreResult, ErrorKind};

/// How a job's tags are compared with the query tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagMode {
    /// Query ⊆ job tags (an untagged job matches only an empty query).
    All,
    /// At least one query tag is on the job.
    Any,
    /// No query tag is on the job (untagged jobs match).
    None,
    /// Same set of tags.
    Exact,
    /// The tag-drain rule: like `All`, but false for an empty query or an untagged job.
    Superset,
}

impl FromStr for TagMode {
    type Err = CoreError;

    fn from_str(mode: &str) -> CoreResult<Self> {
        match mode {
            "all" => Ok(TagMode::All),
            "any" => Ok(TagMode::Any),
            "none" => Ok(TagMode::None),
            "exact" => Ok(TagMode::Exact),
            "superset" => Ok(TagMode::Superset),
            other => Err(CoreError::new(
                ErrorKind::InvalidFilter,
                format!(
                    "unknown tag mode '{other}': expected one of all, any, none, exact, superset"
                ),
            )),
        }
    }
}

/// A query: distinct tags, each with a slot number, and a mode.
#[derive(Debug, Clone)]
pub struct TagQuery {
    slots: FxHashMap<String, usize>,
    mode: TagMode,
}

/// Which query tags a job has hit so far; a bitmask for the usual short query.
enum Hits {
    Small(u64),
    Large(Vec<bool>, usize),
}

impl Hits {
    fn new(size: usize) -> Self {
        if size <= 64 {
            Hits::Small(0)
        } else {
            Hits::Large(vec![false; size], 0)
        }
    }

    fn set(&mut self, slot: usize) {
        match self {
            Hits::Small(mask) => *mask |= 1 << slot,
            Hits::Large(seen, count) => {
                if !seen[slot] {
                    seen[slot] = true;
                    *count += 1;
                }
            }
        }
    }

    fn count(&self) -> usize {
        match self {
            Hits::Small(mask) => mask.count_ones() as usize,
            Hits::Large(_, count) => *count,
        }
    }
}

/// Matching state for one job's tags, fed one tag at a time (so callers can stream tags
/// without collecting them first).
pub struct TagMatch<'q> {
    query: &'q TagQuery,
    hits: Hits,
    any_tag: bool,
    foreign_tag: bool,
}

impl TagMatch<'_> {
    /// Feed one job tag. Returns `Some(result)` once the result cannot change any more.
    pub fn feed(&mut self, tag: &str) -> Option<bool> {
        self.any_tag = true;
        match self.query.slots.get(tag) {
            Some(&slot) => match self.query.mode {
                TagMode::Any => Some(true),
                TagMode::None => Some(false),
                _ => {
                    self.hits.set(slot);
                    None
                }
            },
            None if self.query.mode == TagMode::Exact => {
                self.foreign_tag = true;
                Some(false)
            }
            None => None,
        }
    }

    /// The result after every tag was fed (an untagged job feeds nothing).
    pub fn finish(self) -> bool {
        let all_hit = self.hits.count() == self.query.slots.len();
        match self.query.mode {
            TagMode::All => all_hit,
            TagMode::Any => false,
            TagMode::None => true,
            TagMode::Exact => all_hit && !self.foreign_tag,
            TagMode::Superset => self.any_tag && !self.query.slots.is_empty() && all_hit,
        }
    }
}

impl TagQuery {
    /// Build a query from tags (duplicates ignored) and a mode.
    pub fn new<S: AsRef<str>>(tags: &[S], mode: TagMode) -> Self {
        let mut slots = FxHashMap::default();
        for tag in tags {
            let next = slots.len();
            slots.entry(tag.as_ref().to_owned()).or_insert(next);
        }
        Self { slots, mode }
    }

    /// Build a query, parsing `mode` (unknown mode: `InvalidFilter`).
    pub fn parse<S: AsRef<str>>(tags: &[S], mode: &str) -> CoreResult<Self> {
        Ok(Self::new(tags, mode.parse()?))
    }

    /// The query's mode.
    pub fn mode(&self) -> TagMode {
        self.mode
    }

    /// Start matching one job's tags.
    pub fn start(&self) -> TagMatch<'_> {
        TagMatch {
            query: self,
            hits: Hits::new(self.slots.len()),
            any_tag: false,
            foreign_tag: false,
        }
    }

    /// Match one job's tags (`None` = untagged).
    pub fn matches<'t, I>(&self, job_tags: Option<I>) -> bool
    where
        I: IntoIterator<Item = &'t str>,
    {
        let mut state = self.start();
        for tag in job_tags.into_iter().flatten() {
            if let Some(done) = state.feed(tag) {
                return done;
            }
        }
        state.finish()
    }
}

/// Match one job's tags against `query` under `mode`.
pub fn tags_match<S: AsRef<str>>(
    job_tags: Option<&[S]>,
    query: &[S],
    mode: &str,
) -> CoreResult<bool> {
    let query = TagQuery::parse(query, mode)?;
    Ok(query.matches(job_tags.map(|tags| tags.iter().map(AsRef::as_ref))))
}

/// Match many jobs' tag lists against one query.
pub fn tags_match_many<S: AsRef<str>>(
    tag_lists: &[Option<Vec<S>>],
    query: &[S],
    mode: &str,
) -> CoreResult<Vec<bool>> {
    let query = TagQuery::parse(query, mode)?;
    Ok(tag_lists
        .iter()
        .map(|tags| query.matches(tags.as_ref().map(|t| t.iter().map(AsRef::as_ref))))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const MODES: [&str; 5] = ["all", "any", "none", "exact", "superset"];

    fn m(job: Option<&[&str]>, query: &[&str], mode: &str) -> bool {
        tags_match(job, query, mode).unwrap()
    }

    /// Straightforward set-based definition, for cross-checking.
    fn by_sets(job: Option<&[&str]>, query: &[&str], mode: &str) -> bool {
        let j: HashSet<&str> = job.unwrap_or(&[]).iter().copied().collect();
        let q: HashSet<&str> = query.iter().copied().collect();
        match mode {
            "all" => q.is_subset(&j),
            "any" => !q.is_disjoint(&j),
            "none" => q.is_disjoint(&j),
            "exact" => q == j,
            "superset" => !q.is_empty() && !j.is_empty() && q.is_subset(&j),
            _ => unreachable!(),
        }
    }

    #[test]
    fn modes_follow_set_semantics() {
        let job: &[&str] = &["a", "b", "b", "c"];
        assert!(m(Some(job), &["b", "a"], "all"));
        assert!(!m(Some(job), &["a", "z"], "all"));
        assert!(m(Some(job), &["z", "c"], "any"));
        assert!(!m(Some(job), &["z"], "any"));
        assert!(m(Some(job), &["z"], "none"));
        assert!(!m(Some(job), &["z", "a"], "none"));
        assert!(m(Some(job), &["c", "b", "a", "a"], "exact"));
        assert!(!m(Some(job), &["a", "b"], "exact"));
        assert!(m(Some(job), &["a", "c"], "superset"));
        assert!(!m(Some(job), &["a", "q"], "superset"));
    }

    #[test]
    fn empty_and_untagged_edge_cases() {
        let none: Option<&[&str]> = None;
        let empty: Option<&[&str]> = Some(&[]);
        for job in [none, empty] {
            assert!(m(job, &[], "all"));
            assert!(!m(job, &["a"], "all"));
            assert!(!m(job, &["a"], "any"));
            assert!(m(job, &["a"], "none"), "untagged jobs match 'none'");
            assert!(m(job, &[], "exact"));
            assert!(!m(job, &["a"], "exact"));
            assert!(
                !m(job, &["a"], "superset"),
                "untagged holder is never a superset"
            );
        }
        assert!(
            !m(Some(&["a"]), &[], "superset"),
            "empty required tags: false"
        );
        assert!(m(Some(&["a"]), &[], "all"));
        assert!(!m(Some(&["a"]), &[], "any"));
        assert!(m(Some(&["a"]), &[], "none"));
        assert!(!m(Some(&["a"]), &[], "exact"));
    }

    #[test]
    fn unknown_mode_is_an_invalid_filter() {
        let err = tags_match::<&str>(None, &[], "some").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidFilter);
        assert!(err.message.contains("'some'"));
        assert!(tags_match_many::<&str>(&[], &[], "ALL").is_err());
    }

    #[test]
    fn large_queries_and_bulk_agree_with_sets() {
        let universe: Vec<String> = (0..100).map(|i| format!("t{i}")).collect();
        let big_query: Vec<&str> = universe.iter().map(String::as_str).collect();
        let lists: Vec<Option<Vec<&str>>> = vec![
            None,
            Some(vec![]),
            Some(big_query.clone()),
            Some(big_query[..70].to_vec()),
            Some(vec!["t1", "t99", "x"]),
        ];
        let queries: Vec<Vec<&str>> = vec![
            vec![],
            vec!["t1"],
            big_query.clone(),
            big_query[..65].to_vec(),
            vec!["x", "t1", "t99"],
        ];
        for mode in MODES {
            for query in &queries {
                let bulk = tags_match_many(&lists, query, mode).unwrap();
                for (list, got) in lists.iter().zip(bulk) {
                    let expected = by_sets(list.as_deref(), query, mode);
                    assert_eq!(got, expected, "{mode} {query:?} vs {list:?}");
                    assert_eq!(m(list.as_deref(), query, mode), expected);
                }
            }
        }
    }
}
