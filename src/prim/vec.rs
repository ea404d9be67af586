//! Removing from the front or middle of a `Vec` in one place per entry
//! type and without the panicking paths of `Vec::remove` and `drain`.

use crate::prelude::*;

/// `v.remove(i)`, or nothing when `i` is out of bounds.
pub(crate) fn remove<T>(v: &mut Vec<T>, i: usize) -> Option<T> {
    if let Some(tail) = v.get_mut(i..) {
        to_back(tail, 1);
    }
    if i < v.len() {
        v.pop()
    } else {
        None
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
    fn remove_keeps_the_order_of_the_rest() {
        let mut v = vec![1, 2, 3, 4];
        assert_eq!(remove(&mut v, 1), Some(2));
        assert_eq!(v, [1, 3, 4]);
        assert_eq!(remove(&mut v, 2), Some(4));
        assert_eq!(remove(&mut v, 2), None);
        assert_eq!(v, [1, 3]);
        assert_eq!(remove(&mut v, 0), Some(1));
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
