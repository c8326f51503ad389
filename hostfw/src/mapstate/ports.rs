//! Port ranges as bit prefixes.

/// Splits `first..=last` into the fewest aligned port prefixes that cover
/// exactly the range, in increasing order: `(port, prefix length)` where the
/// prefix covers `port..port + 2^(16 - prefix length)`. Empty when
/// `first > last`; `0..=65535` is the single prefix `(0, 0)`.
#[must_use]
pub fn port_prefixes(first: u16, last: u16) -> Vec<(u16, u8)> {
    let mut out = Vec::new();
    let hi = u32::from(last);
    let mut lo = u32::from(first);
    while lo <= hi {
        // The largest block aligned at `lo` that stays inside the range.
        let mut bits = lo.trailing_zeros().min(16);
        while lo + (1 << bits) - 1 > hi {
            bits -= 1;
        }
        let (Ok(port), Ok(prefix)) = (u16::try_from(lo), u8::try_from(16 - bits)) else {
            break;
        };
        out.push((port, prefix));
        lo += 1 << bits;
    }
    out
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng, rngs::StdRng};

    use super::*;

    /// The ports a prefix covers.
    fn span((port, prefix): (u16, u8)) -> (u32, u32) {
        let size = 1u32 << (16 - u32::from(prefix));
        (u32::from(port), u32::from(port) + size - 1)
    }

    /// Checks that the prefixes are aligned, in order, disjoint and cover
    /// exactly `first..=last`, and that no two neighbours could merge.
    fn check(first: u16, last: u16) {
        let p = port_prefixes(first, last);
        let mut next = u32::from(first);
        for &(port, prefix) in &p {
            assert!(prefix <= 16);
            let (lo, hi) = span((port, prefix));
            assert_eq!(lo, next, "{first}..={last}: {p:?}");
            let size = hi - lo + 1;
            assert_eq!(lo % size, 0, "unaligned {port}/{prefix}");
            next = hi + 1;
        }
        assert_eq!(next, u32::from(last) + 1, "{first}..={last}: {p:?}");
        // Minimal: at most two prefixes of each length, and no pair of
        // siblings (which would merge into their parent).
        for w in p.windows(2) {
            let (a, b) = (span(w[0]), span(w[1]));
            let same_len = w[0].1 == w[1].1;
            let siblings = same_len
                && w[0].1 > 0
                && (a.0 ^ b.0) == (a.1 - a.0 + 1)
                && a.0 % (2 * (a.1 - a.0 + 1)) == 0;
            assert!(!siblings, "{first}..={last}: mergeable {w:?}");
        }
        assert!(p.len() <= 30, "{first}..={last}: {} prefixes", p.len());
    }

    #[test]
    fn edges() {
        assert_eq!(port_prefixes(0, 65535), vec![(0, 0)]);
        assert_eq!(port_prefixes(0, 0), vec![(0, 16)]);
        assert_eq!(port_prefixes(65535, 65535), vec![(65535, 16)]);
        assert_eq!(port_prefixes(80, 80), vec![(80, 16)]);
        assert_eq!(port_prefixes(1, 65535).len(), 16);
        assert_eq!(port_prefixes(0, 65534).len(), 16);
        assert_eq!(port_prefixes(32768, 65535), vec![(32768, 1)]);
        assert_eq!(port_prefixes(1024, 2047), vec![(1024, 6)]);
        assert_eq!(port_prefixes(1024, 2048), vec![(1024, 6), (2048, 16)]);
        assert_eq!(port_prefixes(1, 2), vec![(1, 16), (2, 16)]);
        assert!(port_prefixes(5, 4).is_empty());
        for (a, b) in [
            (0, 0),
            (0, 1),
            (1, 65535),
            (0, 65534),
            (1, 65534),
            (65534, 65535),
            (8080, 8090),
        ] {
            check(a, b);
        }
    }

    #[test]
    fn random_ranges_are_covered_exactly() {
        let mut rng = StdRng::seed_from_u64(0x9071);
        for _ in 0..20_000 {
            let a: u16 = rng.random();
            let b: u16 = if rng.random_bool(0.5) {
                rng.random()
            } else {
                a.saturating_add(rng.random_range(0..300))
            };
            check(a.min(b), a.max(b));
        }
    }

    #[test]
    fn every_port_of_small_ranges() {
        // Exhaustive membership for ranges near the edges and a power of two.
        for first in (0u16..40).chain(65500..=65535).chain(1000..1040) {
            for last in first..first.saturating_add(70) {
                let p = port_prefixes(first, last);
                for port in first.saturating_sub(3)..=last.saturating_add(3) {
                    let covered = p.iter().filter(|&&x| {
                        let (lo, hi) = span(x);
                        (lo..=hi).contains(&u32::from(port))
                    });
                    let expect = usize::from((first..=last).contains(&port));
                    assert_eq!(covered.count(), expect, "{first}..={last} port {port}");
                }
            }
        }
    }
}
