//! Removing from the front or middle of a `Vec` in one place per entry
//! type and without the panicking paths of `Vec::remove` and `drain`.

use crate::prelude::*;

/// `v.push(e)` then `v.remove(0)`, returned (nothing when `v` was empty):
/// `e` takes the first entry's place and moves to the back.
pub(crate) fn shift_in<T>(v: &mut Vec<T>, e: T) -> Option<T> {
    let Some(first) = v.first_mut() else {
        v.push(e);
        return None;
    };
    let out = core::mem::replace(first, e);
    to_back(v, 1);
    Some(out)
}

/// `v.remove(i)`, dropping the entry; nothing when `i` is out of bounds.
pub(crate) fn remove<T>(v: &mut Vec<T>, i: usize) {
    if let Some(tail @ [_, ..]) = v.get_mut(i..) {
        to_back(tail, 1);
        v.pop();
    }
}

/// `v.drain(..n)`: drop the first `n` entries (every one, when fewer).
pub(crate) fn drop_first<T>(v: &mut Vec<T>, n: usize) {
    let n = n.min(v.len());
    to_back(v, n);
    v.truncate(v.len() - n);
}

/// Move the first `n` entries of `v` (at most all) behind the others,
/// which keep their order. Not inlined: its callers share one copy.
#[inline(never)]
fn to_back<T>(v: &mut [T], n: usize) {
    for k in n..v.len() {
        v.swap(k - n, k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_in_appends_and_removes_the_first() {
        let mut v = vec![];
        assert_eq!(shift_in(&mut v, 1), None);
        assert_eq!(v, [1]);
        assert_eq!(shift_in(&mut v, 2), Some(1));
        assert_eq!(v, [2]);
        let mut v = vec![1, 2, 3, 4];
        assert_eq!(shift_in(&mut v, 5), Some(1));
        assert_eq!(v, [2, 3, 4, 5]);
    }

    #[test]
    fn remove_keeps_the_order_of_the_rest() {
        let mut v = vec![1, 2, 3, 4];
        remove(&mut v, 1);
        assert_eq!(v, [1, 3, 4]);
        remove(&mut v, 3);
        assert_eq!(v, [1, 3, 4], "out of bounds: nothing");
        remove(&mut v, 2);
        remove(&mut v, 0);
        assert_eq!(v, [3]);
    }

    #[test]
    fn drop_first_keeps_the_order_of_the_rest() {
        let mut v = vec![1, 2, 3, 4, 5];
        drop_first(&mut v, 2);
        assert_eq!(v, [3, 4, 5]);
        drop_first(&mut v, 0);
        assert_eq!(v, [3, 4, 5]);
        drop_first(&mut v, 9);
        assert!(v.is_empty());
    }
}
