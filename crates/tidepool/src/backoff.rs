//! Exponential backoff with jitter, shared by connection retries and
//! transaction retries. Jitter comes from a cheap thread-local generator:
//! it only has to keep clients from retrying in lockstep.

use std::cell::Cell;
use std::time::Duration;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let addr = &STATE as *const _ as u64;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (addr ^ nanos) | 1
}

/// A uniform random number in `[0, 1)`.
pub(crate) fn unit() -> f64 {
    STATE.with(|s| {
        // xorshift64*: fast, and good enough to spread retries.
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// The delay before retry number `attempt` (1-based): `base * 2^(attempt-1)`
/// capped at `max`, then scaled by a random factor in `[0.5, 1.0]` ("equal
/// jitter"), so a crowd of retries spreads out but never retries at once.
pub(crate) fn delay(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max);
    capped.mul_f64(0.5 + 0.5 * unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_jitter_and_respect_the_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for _ in 0..1000 {
            let d1 = delay(base, max, 1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= base, "{d1:?}");
            let d3 = delay(base, max, 3);
            assert!(
                d3 >= Duration::from_millis(200) && d3 <= Duration::from_millis(400),
                "{d3:?}"
            );
            let d10 = delay(base, max, 10);
            assert!(d10 >= Duration::from_millis(500) && d10 <= max, "{d10:?}");
        }
    }

    #[test]
    fn jitter_is_not_constant() {
        let samples: std::collections::HashSet<u128> = (0..100)
            .map(|_| delay(Duration::from_millis(100), Duration::from_secs(1), 2).as_nanos())
            .collect();
        assert!(samples.len() > 50);
    }
}
