//! Retry delay after a failure (SPEC §5).
//!
//! * No retry option set (legacy): `2^attempts` minutes, no jitter.
//! * `retry_backoff` true or unset: `min(retry_delay_max or MAX, retry_delay·2^attempts)`
//!   seconds (`retry_delay` defaults to 60) times a jitter factor `0.5 + 0.5·rand` in [0.5, 1].
//! * `retry_backoff` false: `retry_delay` seconds (default 60).
//!
//! Every delay is capped at [`MAX_DELAY_SECONDS`] (2^31 − 1, what the stored INT columns hold),
//! so huge attempt counts saturate instead of overflowing. Computations in f64 are exact here:
//! the capped value is an integer below 2^31, and a power of two is exact in f64.

use crate::error::{CoreError, CoreResult, ErrorKind};

/// Largest delay ever returned, in seconds.
pub const MAX_DELAY_SECONDS: i64 = 2_147_483_647;
/// Default `retry_delay` in seconds.
pub const DEFAULT_RETRY_DELAY: i64 = 60;
/// Beyond this exponent every positive base is already over the cap.
const MAX_EXPONENT: i64 = 64;

/// A job's retry options, validated once and reused for many attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    retry_delay: Option<i64>,
    retry_backoff: Option<bool>,
    retry_delay_max: Option<i64>,
}

fn invalid(message: String) -> CoreError {
    CoreError::new(ErrorKind::InvalidJob, message)
}

fn negative_attempts(attempts: i64) -> CoreError {
    invalid(format!(
        "attempts must be a non-negative integer, got {attempts}"
    ))
}

fn check_non_negative(name: &str, value: Option<i64>) -> CoreResult<()> {
    match value {
        Some(v) if v < 0 => Err(invalid(format!(
            "{name} must be a non-negative integer, got {v}"
        ))),
        _ => Ok(()),
    }
}

/// `rand` must be a finite number in [0, 1).
pub fn check_rand(rand: f64) -> CoreResult<f64> {
    if (0.0..1.0).contains(&rand) {
        Ok(rand)
    } else {
        Err(invalid(format!("rand must be in [0, 1), got {rand}")))
    }
}

/// `2^min(exponent, 64)` as an exact f64, built from its bits (no `powi` libcall).
fn pow2(exponent: i64) -> f64 {
    // 0 <= exponent <= 64, so the biased exponent is a normal f64 exponent.
    let clamped = exponent.clamp(0, MAX_EXPONENT) as u64;
    f64::from_bits((clamped + 1023) << 52)
}

impl RetryPolicy {
    /// Validate the options (negative delays: `InvalidJob`).
    pub fn new(
        retry_delay: Option<i64>,
        retry_backoff: Option<bool>,
        retry_delay_max: Option<i64>,
    ) -> CoreResult<Self> {
        check_non_negative("retry_delay", retry_delay)?;
        check_non_negative("retry_delay_max", retry_delay_max)?;
        Ok(Self {
            retry_delay,
            retry_backoff,
            retry_delay_max,
        })
    }

    /// Whether the delay is randomised (only the exponential backoff is).
    pub fn uses_jitter(&self) -> bool {
        !self.is_legacy() && self.retry_backoff != Some(false)
    }

    fn is_legacy(&self) -> bool {
        self.retry_delay.is_none() && self.retry_backoff.is_none() && self.retry_delay_max.is_none()
    }

    /// Delay in seconds after `attempts` attempts, with `rand` in [0, 1) as the jitter draw.
    pub fn delay_seconds(&self, attempts: i64, rand: f64) -> CoreResult<f64> {
        if attempts < 0 {
            return Err(negative_attempts(attempts));
        }
        Ok(self.delay_unchecked(attempts, rand))
    }

    /// The formula itself, for `attempts >= 0` and `rand` in [0, 1).
    fn delay_unchecked(&self, attempts: i64, rand: f64) -> f64 {
        let cap = MAX_DELAY_SECONDS as f64;
        if self.is_legacy() {
            return (pow2(attempts) * 60.0).min(cap);
        }
        let base = self.retry_delay.unwrap_or(DEFAULT_RETRY_DELAY) as f64;
        if self.retry_backoff == Some(false) {
            return base.min(cap);
        }
        // `retry_delay_max` of 0 or unset means "no maximum" (then the global cap applies).
        let max = match self.retry_delay_max {
            Some(m) if m > 0 => (m as f64).min(cap),
            _ => cap,
        };
        (base * pow2(attempts)).min(max) * (0.5 + 0.5 * rand)
    }
}

/// One delay; `rand` is drawn from a fast PRNG when not given.
pub fn retry_delay_seconds(
    attempts: i64,
    retry_delay: Option<i64>,
    retry_backoff: Option<bool>,
    retry_delay_max: Option<i64>,
    rand: Option<f64>,
) -> CoreResult<f64> {
    let policy = RetryPolicy::new(retry_delay, retry_backoff, retry_delay_max)?;
    let rand = match rand {
        Some(r) => check_rand(r)?,
        None => fastrand::f64(),
    };
    policy.delay_seconds(attempts, rand)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(
        attempts: i64,
        delay: Option<i64>,
        backoff: Option<bool>,
        max: Option<i64>,
        r: f64,
    ) -> f64 {
        retry_delay_seconds(attempts, delay, backoff, max, Some(r)).unwrap()
    }

    #[test]
    fn legacy_is_two_to_the_attempts_minutes() {
        assert_eq!(d(0, None, None, None, 0.3), 60.0);
        assert_eq!(d(1, None, None, None, 0.3), 120.0);
        assert_eq!(d(2, None, None, None, 0.9), 240.0);
        assert_eq!(d(30, None, None, None, 0.0), MAX_DELAY_SECONDS as f64);
        assert_eq!(d(i64::MAX, None, None, None, 0.0), MAX_DELAY_SECONDS as f64);
    }

    #[test]
    fn backoff_with_jitter_and_cap() {
        // retry_delay=5, first failure: 10 s times [0.5, 1].
        assert_eq!(d(1, Some(5), None, None, 0.0), 5.0);
        assert_eq!(d(1, Some(5), Some(true), None, 0.5), 7.5);
        assert!(d(1, Some(5), Some(true), None, 0.999_999) < 10.0);
        // Default delay 60 when only the flag or the max is set.
        assert_eq!(d(2, None, Some(true), None, 0.0), 120.0);
        assert_eq!(d(3, None, None, Some(100), 0.0), 50.0);
        assert_eq!(d(3, Some(10), None, Some(100), 0.5), 60.0);
        assert_eq!(d(4, Some(10), None, Some(100), 0.5), 75.0);
        // A max of 0 means no maximum; huge attempts saturate at the global cap.
        assert_eq!(d(3, Some(10), None, Some(0), 0.0), 40.0);
        assert_eq!(
            d(i64::MAX, Some(i64::MAX), None, Some(i64::MAX), 0.0),
            MAX_DELAY_SECONDS as f64 / 2.0
        );
        assert_eq!(d(5, Some(0), Some(true), None, 0.7), 0.0);
    }

    #[test]
    fn pow2_is_exact() {
        for e in 0..=64 {
            assert_eq!(pow2(e), 2_f64.powi(e as i32));
        }
        assert_eq!(pow2(1000), pow2(64));
    }

    #[test]
    fn fixed_delay_without_backoff() {
        assert_eq!(d(7, Some(10), Some(false), None, 0.2), 10.0);
        assert_eq!(d(7, None, Some(false), Some(3), 0.2), 60.0);
        assert_eq!(
            d(0, Some(i64::MAX), Some(false), None, 0.2),
            MAX_DELAY_SECONDS as f64
        );
    }

    #[test]
    fn invalid_inputs_are_invalid_job_errors() {
        for result in [
            retry_delay_seconds(-1, None, None, None, Some(0.0)),
            retry_delay_seconds(1, Some(-5), None, None, Some(0.0)),
            retry_delay_seconds(1, None, None, Some(-1), Some(0.0)),
            retry_delay_seconds(1, Some(5), None, None, Some(1.0)),
            retry_delay_seconds(1, Some(5), None, None, Some(f64::NAN)),
        ] {
            assert_eq!(result.unwrap_err().kind, ErrorKind::InvalidJob);
        }
    }

    #[test]
    fn drawn_jitter_stays_in_range() {
        for i in 0..10_000_i64 {
            let a = i % 12;
            let got = retry_delay_seconds(a, Some(5), None, Some(3600), None).unwrap();
            let full = d(a, Some(5), None, Some(3600), 0.0) * 2.0;
            assert!(
                got >= full * 0.5 && got <= full,
                "{got} outside [{}, {full}]",
                full / 2.0
            );
        }
        assert!(RetryPolicy::new(Some(1), None, None).unwrap().uses_jitter());
        assert!(!RetryPolicy::new(None, None, None).unwrap().uses_jitter());
        assert!(!RetryPolicy::new(None, Some(false), None)
            .unwrap()
            .uses_jitter());
    }
}
