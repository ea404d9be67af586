//! The capped journal every persisted part keeps: the updates made since its
//! last commit, which a sync replays onto what other tabs stored and a
//! commit then drops (see `store::sync`).
//!
//! A journal is bounded (storage may fail, or be refused, for a long time)
//! and each part chooses what happens at the cap ([`STOP`] or
//! [`FOLD_OLDEST`]). It remembers how many entries the last sync saw
//! ([`Marked::mark`]), so the commit drops exactly those
//! ([`Marked::drain_marked`], or [`Journal::retain`] for a part that also
//! filters) even if entries were evicted or lost in between.

use crate::prelude::*;

/// What a full journal does with one more entry: its `RULE`, a type
/// parameter rather than a field so that each journal's code holds only its
/// own rule's branch (a field cost the full .wasm about 0.9 kB, 0.25 kB
/// brotli).
pub(crate) type Overflow = bool;
/// The journal is lost: its entries are dropped and it takes no more. Its
/// owner can no longer replay its updates and writes its own state instead
/// (the learner overwrites, the behaviour store deduplicates).
pub(crate) const STOP: Overflow = false;
/// The oldest entry leaves, handed back to the owner to fold into its own
/// state (the allocator's counts).
pub(crate) const FOLD_OLDEST: Overflow = true;

/// Where a journal keeps its entries: a `Vec` of them, or a part's own
/// packed form (the behaviour store's byte log of event records, which its
/// merge reads as is; one `Vec` per event would cost an allocation each).
pub(crate) trait Entries: Default {
    /// One entry as it goes in and comes out.
    type Item;
    /// How many entries there are.
    fn count(&self) -> usize;
    /// Append `e`.
    fn add(&mut self, e: Self::Item);
    /// Append `e` and remove the first entry, returned (none when there
    /// was none: `e` is only appended).
    fn shift_in(&mut self, e: Self::Item) -> Option<Self::Item>;
    /// Drop the first `n` entries (every one, when there are fewer).
    fn drop_first(&mut self, n: usize);
}

impl<T> Entries for Vec<T> {
    type Item = T;
    fn count(&self) -> usize {
        self.len()
    }
    fn add(&mut self, e: T) {
        self.push(e);
    }
    fn shift_in(&mut self, e: T) -> Option<T> {
        super::vec::shift_in(self, e)
    }
    fn drop_first(&mut self, n: usize) {
        super::vec::drop_first(self, n);
    }
}

/// At most `cap` entries made since the last commit, or, once it
/// overflowed under [`STOP`], none and a note that some were lost.
#[derive(Debug, Clone)]
pub(crate) struct Journal<S, const RULE: Overflow> {
    entries: S,
    cap: usize,
    lost: bool,
    /// An update went unrecorded (the journal overflowed, or was lost)
    /// since the last sync saw it: see [`Marked::recover`].
    missed: bool,
    /// Entries the last sync saw, less those evicted since.
    marked: usize,
}

impl<S: Entries, const RULE: Overflow> Journal<S, RULE> {
    /// An empty journal of at most `cap` entries.
    pub(crate) fn new(cap: usize) -> Journal<S, RULE> {
        Journal {
            entries: S::default(),
            cap,
            lost: false,
            missed: false,
            marked: 0,
        }
    }

    /// Record `e`. A full journal first applies its rule: under [`STOP`] it
    /// is lost (`e` too); under [`FOLD_OLDEST`] its oldest entry is
    /// returned, for the owner to fold into its own state. A lost journal
    /// takes nothing.
    pub(crate) fn push(&mut self, e: S::Item) -> Option<S::Item> {
        if self.overflowed() {
            self.missed = true;
            return None;
        }
        if self.entries.count() >= self.cap {
            if RULE == STOP {
                self.lost = true;
                self.missed = true;
                self.entries = S::default();
                self.marked = 0;
                return None;
            }
            // A sync that saw the oldest now saw one entry fewer.
            self.marked = self.marked.saturating_sub(1);
            return self.entries.shift_in(e);
        }
        self.entries.add(e);
        None
    }

    /// The entries, oldest first (none once lost).
    pub(crate) fn entries(&self) -> &S {
        &self.entries
    }

    /// How many entries there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.count()
    }

    /// Whether it overflowed under [`STOP`] since it was created
    /// or [`reset`](Journal::reset): updates were lost.
    pub(crate) fn overflowed(&self) -> bool {
        // (Known false for a folding journal, so its code checks nothing.)
        RULE == STOP && self.lost
    }

    /// An update its owner did not [`push`](Journal::push) because the
    /// journal is lost (sparing a copy nobody would keep).
    pub(crate) fn miss(&mut self) {
        self.missed = true;
    }

    /// Empty, taking entries again.
    pub(crate) fn reset(&mut self) {
        self.entries = S::default();
        self.lost = false;
        self.missed = false;
        self.marked = 0;
    }
}

/// What the sync protocol does with a journal, whatever its entries and
/// rule.
pub(crate) trait Marked {
    /// A sync has read the journal: its commit will drop what it saw.
    fn mark(&mut self);
    /// The sync's bytes were written: drop the entries it saw, keeping
    /// those made since. A lost journal has none to drop.
    fn drain_marked(&mut self);
    /// A sync was committed. A lost journal's owner wrote its whole own
    /// state then (it could not replay a journal onto what was stored);
    /// if no update went unrecorded since, what is stored holds every one
    /// of its updates, and the journal starts again, empty. Without this a
    /// tab whose journal overflowed once (storage failing for a long time)
    /// would write over the other tabs' learning at every later sync.
    fn recover(&mut self);
}

impl<S: Entries, const RULE: Overflow> Marked for Journal<S, RULE> {
    fn mark(&mut self) {
        self.marked = self.entries.count();
        self.missed = false;
    }

    fn recover(&mut self) {
        if self.overflowed() && !self.missed {
            self.lost = false;
        }
    }

    fn drain_marked(&mut self) {
        self.entries.drop_first(self.marked);
        self.marked = 0;
    }
}

impl<T, const RULE: Overflow> Journal<Vec<T>, RULE> {
    /// Keep only the entries `keep` accepts, after dropping those the last
    /// sync saw when it was `committed`, in one pass: as
    /// [`drain_marked`](Marked::drain_marked) then a filter, in less code.
    pub(crate) fn retain(&mut self, committed: bool, mut keep: impl FnMut(&T) -> bool) {
        let seen = if committed { self.marked } else { 0 };
        let mut i = 0;
        self.entries.retain(|e| {
            i += 1;
            i > seen && keep(e)
        });
        self.marked = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal<const RULE: Overflow>(cap: usize) -> Journal<Vec<u32>, RULE> {
        let mut j = Journal::new(cap);
        for e in 0..cap as u32 {
            assert_eq!(j.push(e), None);
        }
        j
    }

    #[test]
    fn it_holds_up_to_its_cap() {
        let j = journal::<STOP>(3);
        assert_eq!(j.entries(), &[0, 1, 2]);
        assert_eq!(j.len(), 3);
        assert!(!j.overflowed());
        let j = journal::<FOLD_OLDEST>(3);
        assert_eq!(j.entries(), &[0, 1, 2]);
        assert!(!j.overflowed());
    }

    #[test]
    fn stop_loses_the_journal_and_takes_nothing_more() {
        let mut j = journal::<STOP>(3);
        assert_eq!(j.push(3), None);
        assert!(j.overflowed());
        assert_eq!(j.len(), 0);
        assert_eq!(j.push(4), None);
        assert_eq!(j.len(), 0, "a lost journal stays empty");
        j.reset();
        assert!(!j.overflowed());
        assert_eq!(j.push(5), None);
        assert_eq!(j.entries(), &[5]);
    }

    #[test]
    fn fold_oldest_hands_back_the_oldest_entries_in_turn() {
        let mut j = journal::<FOLD_OLDEST>(3);
        assert_eq!(j.push(3), Some(0));
        assert_eq!(j.push(4), Some(1));
        assert_eq!(j.entries(), &[2, 3, 4]);
        assert!(!j.overflowed());
    }

    #[test]
    fn a_commit_drops_the_prefix_its_sync_saw() {
        let mut j = journal::<STOP>(5);
        j.drain_marked();
        assert_eq!(j.len(), 5, "no sync, nothing to drop");
        let mut j = journal::<STOP>(3);
        j.mark();
        j.drain_marked();
        assert_eq!(j.len(), 0);
        // A second commit drops nothing more.
        j.push(7);
        j.drain_marked();
        assert_eq!(j.entries(), &[7]);
    }

    #[test]
    fn entries_made_between_sync_and_commit_stay() {
        let mut j: Journal<Vec<u32>, STOP> = Journal::new(4);
        j.push(0);
        j.push(1);
        j.mark();
        j.push(2);
        j.push(3);
        j.drain_marked();
        assert_eq!(j.entries(), &[2, 3]);
    }

    #[test]
    fn evictions_between_sync_and_commit_shorten_what_it_drops() {
        let mut j = journal::<FOLD_OLDEST>(3);
        j.mark();
        // 0 and 1 leave (folded by the owner): the sync saw 2 still here.
        assert_eq!(j.push(3), Some(0));
        assert_eq!(j.push(4), Some(1));
        j.drain_marked();
        assert_eq!(j.entries(), &[3, 4]);
        // More evictions than the sync saw drop nothing made since.
        let mut j = journal::<FOLD_OLDEST>(2);
        j.mark();
        for e in 2..6 {
            j.push(e);
        }
        j.drain_marked();
        assert_eq!(j.entries(), &[4, 5]);
    }

    #[test]
    fn an_overflow_between_sync_and_commit_leaves_it_lost() {
        let mut j = journal::<STOP>(3);
        j.mark();
        j.push(3);
        j.drain_marked();
        assert!(j.overflowed());
        assert_eq!(j.len(), 0);
        assert_eq!(j.push(4), None);
        assert_eq!(j.len(), 0, "a commit does not revive it");
    }

    #[test]
    fn retain_keeps_the_order() {
        let mut j = journal::<STOP>(5);
        j.mark();
        j.retain(false, |&e| e % 2 == 0);
        assert_eq!(j.entries(), &[0, 2, 4]);
        j.drain_marked();
        assert_eq!(j.entries(), &[0, 2, 4], "a filter forgets the mark");
    }

    #[test]
    fn retain_after_a_commit_drops_what_the_sync_saw_first() {
        let mut j = journal::<FOLD_OLDEST>(4);
        j.mark();
        assert_eq!(j.push(4), Some(0));
        assert_eq!(j.push(5), Some(1));
        // The sync saw 2 and 3 (0 and 1 were folded); 4 and 5 came since.
        j.retain(true, |&e| e != 5);
        assert_eq!(j.entries(), &[4]);
    }

    #[test]
    fn a_lost_journal_recovers_only_when_the_commit_saw_every_update() {
        let mut j = journal::<STOP>(2);
        assert_eq!(j.push(2), None);
        assert!(j.overflowed());
        // Committed without a sync since the loss: the overflowing update
        // was never written.
        j.recover();
        assert!(j.overflowed());
        // A sync saw the whole own state; an update missed after it keeps
        // the journal lost.
        j.mark();
        j.miss();
        j.recover();
        assert!(j.overflowed());
        // So does one refused by `push`.
        j.mark();
        assert_eq!(j.push(3), None);
        j.recover();
        assert!(j.overflowed());
        // Nothing since the sync: it takes entries again, from empty.
        j.mark();
        j.recover();
        assert!(!j.overflowed());
        assert_eq!(j.len(), 0);
        assert_eq!(j.push(4), None);
        assert_eq!(j.entries(), &[4]);
    }

    #[test]
    fn recover_leaves_a_journal_that_was_never_lost_as_it_is() {
        let mut j = journal::<FOLD_OLDEST>(2);
        j.mark();
        j.recover();
        assert_eq!(j.entries(), &[0, 1]);
        let mut k = journal::<STOP>(2);
        k.mark();
        k.recover();
        assert_eq!(k.entries(), &[0, 1]);
    }
}
