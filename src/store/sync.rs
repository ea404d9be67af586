//! The sync protocol every persisted part follows (the learner of each
//! slot, the behaviour store, the A/B allocator).
//!
//! The caller (the JS boundary, holding a Web Lock) reads the stored bytes,
//! calls [`Persisted::sync`], writes the bytes it returns, and on success
//! calls [`Persisted::commit`]. A sync merges the part's own updates not yet
//! stored (its [`Journal`](crate::prim::journal::Journal)) onto what other tabs stored and stages the
//! result; until the commit the part is unchanged, so a failed write loses
//! nothing: the next sync merges again. The commit applies what was staged
//! and drops the journal entries the sync saw, keeping those made while the
//! bytes were being written. Each part supplies only its merge rule and its
//! section layout ([`Persisted::stage`]) and what applying means
//! ([`Persisted::apply`]).

use crate::error::Result;
use crate::prim::clock::check_now;
use crate::prim::journal::Marked;
use crate::store::Snapshot;

/// A part that syncs its section of the snapshot with what is stored, then
/// commits.
pub(crate) trait Persisted {
    /// What a sync needs besides the stored bytes, the time and the size
    /// cap (the learner's slot name, the allocator's exposure age and
    /// consent).
    type Args<'a>;
    /// What a sync computed, applied by the commit.
    type Staged;
    /// What a sync returns: the bytes to write, and what it found.
    type Report;
    /// The journal: a [`Journal`](crate::prim::journal::Journal) of its
    /// entries, under its overflow rule.
    type Journal: Marked;

    /// The staged sync and the journal.
    fn parts(&mut self) -> (&mut Option<Self::Staged>, &mut Self::Journal);

    /// Merge onto the `stored` snapshot (none when nothing is stored, see
    /// [`open`]), encode the snapshot to write, and, once nothing can fail,
    /// stage the result. On error nothing changes.
    fn stage(
        &mut self,
        stored: Option<&[u8]>,
        now_ms: f64,
        max_bytes: usize,
        args: Self::Args<'_>,
    ) -> Result<Self::Report>;

    /// Apply what a sync staged, and drop the journal entries it saw
    /// ([`Marked::drain_marked`], or a filter that does as well): they are
    /// stored now.
    fn apply(&mut self, s: Self::Staged);

    /// Stage a merge with `stored` and return what to write. Cancels a sync
    /// not yet committed; on error nothing else changes.
    fn sync(
        &mut self,
        stored: Option<&[u8]>,
        now_ms: f64,
        max_bytes: usize,
        args: Self::Args<'_>,
    ) -> Result<Self::Report> {
        // A failed sync must not leave an earlier merge to be committed.
        *self.parts().0 = None;
        check_now(now_ms)?;
        let report = self.stage(stored, now_ms, max_bytes, args)?;
        self.parts().1.mark();
        Ok(report)
    }

    /// Apply the last sync once its bytes were written. Returns false,
    /// changing nothing, when there is nothing to commit (no sync, a failed
    /// one, or one already committed).
    fn commit(&mut self) -> bool {
        let Some(s) = self.parts().0.take() else {
            return false;
        };
        self.apply(s);
        self.parts().1.recover();
        true
    }
}

/// The stored snapshot, or an empty one when nothing is stored.
pub(crate) fn open(stored: Option<&[u8]>, max_bytes: usize) -> Result<Snapshot> {
    match stored {
        Some(b) => Snapshot::decode(b, max_bytes),
        None => Ok(Snapshot::new()),
    }
}
