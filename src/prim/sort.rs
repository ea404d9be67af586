//! Sorting without the standard library's sorts, which would add about
//! 14 KB to the .wasm: one small heapsort for keys, an insertion sort for
//! the handful of names an allowlist or type list holds.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// `v` sorted ascending.
pub(crate) fn sorted(mut v: Vec<u128>) -> Vec<u128> {
    fn sift(v: &mut [u128], mut i: usize, n: usize) {
        loop {
            let mut c = 2 * i + 1;
            if c >= n {
                return;
            }
            if c + 1 < n && v[c + 1] > v[c] {
                c += 1;
            }
            if v[i] >= v[c] {
                return;
            }
            v.swap(i, c);
            i = c;
        }
    }
    let n = v.len();
    for i in (0..n / 2).rev() {
        sift(&mut v, i, n);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift(&mut v, 0, end);
    }
    v
}

/// The `cap` items of `v` with the latest `time` (all finite), in their
/// original order.
pub(crate) fn latest<T>(v: Vec<T>, cap: usize, time: impl Fn(&T) -> f64) -> Vec<T> {
    if v.len() <= cap {
        return v;
    }
    let mut times = Vec::with_capacity(v.len());
    for x in &v {
        times.push(time(x));
    }
    let keep = latest_of(&times, cap);
    let mut out = Vec::with_capacity(cap);
    for (x, k) in v.into_iter().zip(keep) {
        if k {
            out.push(x);
        }
    }
    out
}

/// Which of `times` (all finite, more than `cap`) are the `cap` latest;
/// of equal times the later ones. Not generic, so one copy serves every
/// item type.
fn latest_of(times: &[f64], cap: usize) -> Vec<bool> {
    // Finite doubles map to u64s in the same order; the index breaks ties.
    let mut keys = Vec::with_capacity(times.len());
    for (i, x) in times.iter().enumerate() {
        let b = x.to_bits();
        let order = if b >> 63 == 1 { !b } else { b | 1 << 63 };
        keys.push((u128::from(order) << 64) | i as u128);
    }
    let keys = sorted(keys);
    let mut keep = vec![false; times.len()];
    for k in keys.iter().skip(keys.len().saturating_sub(cap)) {
        if let Some(slot) = keep.get_mut(*k as u64 as usize) {
            *slot = true;
        }
    }
    keep
}

/// Insertion sort of a few names, by their bytes.
pub(crate) fn sort_strings(v: &mut [String]) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && v[j - 1] > v[j] {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prim::rng::Rng;
    use alloc::string::ToString;

    #[test]
    fn the_heapsort_sorts_and_latest_keeps_the_latest() {
        let mut rng = Rng::new(2);
        for n in [0usize, 1, 2, 3, 10, 257] {
            let v: Vec<u128> = (0..n)
                .map(|_| u128::from(rng.next_u64() % 50) << 70)
                .collect();
            let mut want = v.clone();
            want.sort_unstable();
            assert_eq!(sorted(v), want, "n = {n}");
        }
        let times = [5.0, -1.0, 3.0, f64::MAX, 3.0, -0.0, 0.0];
        let got = latest(times.to_vec(), 3, |t| *t);
        // Of the two 3.0s the later one stays (ties go to the higher index).
        assert_eq!(got, [5.0, f64::MAX, 3.0]);
        assert_eq!(latest(times.to_vec(), 9, |t| *t), times);
        assert_eq!(latest(times.to_vec(), 0, |t| *t), Vec::<f64>::new());
    }

    #[test]
    fn names_sort_by_their_bytes() {
        let mut s: Vec<String> = ["b", "a", "c", "a", "é", "z"]
            .iter()
            .map(|x| x.to_string())
            .collect();
        sort_strings(&mut s);
        assert_eq!(s, ["a", "a", "b", "c", "z", "é"]);
    }
}
