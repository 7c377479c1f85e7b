//! The pending trials: one queue per dataset, in one shared order, so that a worker that cannot
//! load some dataset is given the first trial it can run without a scan of the others.
//!
//! Every entry carries a sequence number: `push_back` takes the next one up, `push_front` the
//! next one down, and `pop` takes the smallest among the queues' fronts. With every dataset
//! allowed, that is exactly the order of a single double-ended queue.

use std::collections::{BTreeMap, VecDeque};

use sweep_common::DatasetKind;

/// Trials waiting for a worker, by dataset, as indexes into the scheduler's trials.
#[derive(Debug, Default)]
pub struct Pending {
    queues: BTreeMap<DatasetKind, VecDeque<(i64, usize)>>,
    back: i64,
    front: i64,
    len: usize,
}

impl Pending {
    /// Queues trial `i` (of `dataset`) after every other.
    pub fn push_back(&mut self, dataset: DatasetKind, i: usize) {
        self.back += 1;
        self.queues
            .entry(dataset)
            .or_default()
            .push_back((self.back, i));
        self.len += 1;
    }

    /// Queues trial `i` (of `dataset`) before every other; returns its sequence number.
    pub fn push_front(&mut self, dataset: DatasetKind, i: usize) -> i64 {
        self.front -= 1;
        self.queues
            .entry(dataset)
            .or_default()
            .push_front((self.front, i));
        self.len += 1;
        self.front
    }

    /// Queues trial `i` (of `dataset`) at `at`, a number [`Pending::push_front`] gave before a
    /// restart; called in increasing order of `at`, before any other push.
    pub fn restore_ahead(&mut self, dataset: DatasetKind, i: usize, at: i64) {
        self.front = self.front.min(at);
        self.queues.entry(dataset).or_default().push_back((at, i));
        self.len += 1;
    }

    /// The first trial whose dataset `allowed` accepts, left in the queue.
    pub fn peek(&self, allowed: impl Fn(DatasetKind) -> bool) -> Option<usize> {
        self.queues
            .iter()
            .filter(|(d, q)| !q.is_empty() && allowed(**d))
            .filter_map(|(_, q)| q.front())
            .min_by_key(|e| e.0)
            .map(|e| e.1)
    }

    /// Takes the first trial whose dataset `allowed` accepts.
    pub fn pop(&mut self, allowed: impl Fn(DatasetKind) -> bool) -> Option<usize> {
        let (_, queue) = self
            .queues
            .iter_mut()
            .filter(|(d, q)| !q.is_empty() && allowed(**d))
            .min_by_key(|(_, q)| q.front().map_or(i64::MAX, |e| e.0))?;
        let (_, i) = queue.pop_front()?;
        self.len -= 1;
        Some(i)
    }

    /// Trials waiting.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Trials waiting, by dataset (datasets with none left out).
    pub fn by_dataset(&self) -> impl Iterator<Item = (DatasetKind, usize)> + '_ {
        self.queues
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(d, q)| (*d, q.len()))
    }

    /// Keeps only the trials `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(usize) -> bool) {
        for q in self.queues.values_mut() {
            q.retain(|&(_, i)| keep(i));
        }
        self.len = self.queues.values().map(VecDeque::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: DatasetKind = DatasetKind::FashionMnist;
    const C: DatasetKind = DatasetKind::Cifar10;

    #[test]
    fn one_order_across_datasets_and_a_filter() {
        let mut p = Pending::default();
        p.push_back(F, 0);
        p.push_back(C, 1);
        p.push_back(F, 2);
        p.push_front(C, 3);
        assert_eq!(p.len(), 4);
        assert_eq!(p.peek(|_| true), Some(3));
        assert_eq!(p.pop(|_| true), Some(3));
        assert_eq!(p.peek(|d| d == F), Some(0));
        assert_eq!(p.pop(|d| d == F), Some(0));
        assert_eq!(p.pop(|d| d == F), Some(2));
        assert_eq!(p.pop(|d| d == F), None);
        assert_eq!(p.by_dataset().collect::<Vec<_>>(), [(C, 1)]);
        p.retain(|i| i != 1);
        assert_eq!(p.len(), 0);
        assert_eq!(p.pop(|_| true), None);
    }
}
