//! Reproducible randomness.
//!
//! Every user and every organisation has its own ChaCha8 stream, keyed by the
//! seed and a domain and selected by its index, so any one of them can be
//! regenerated alone and the output never depends on iteration order or thread
//! count. Floating point stays within `+ - * /` and `sqrt`, which IEEE 754
//! rounds exactly everywhere; `exp`, `ln` and `powf` come from the platform's
//! libm and may differ in the last bit between platforms, so they are avoided.

use crate::tables::{Country, LOCAL_HOURS};
use events::MS_PER_DAY;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MS_PER_HOUR: i64 = 3_600_000;

/// Which kind of entity a stream belongs to; part of the ChaCha key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Domain {
    User = 1,
    Org = 2,
}

pub(crate) fn rng_for(seed: u64, domain: Domain, index: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(domain as u64).to_le_bytes());
    key[16..].copy_from_slice(b"hearth-datagen\0\0");
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(index);
    rng
}

/// True with probability `numerator / 1000`.
pub(crate) fn per_mille(rng: &mut impl Rng, numerator: u32) -> bool {
    rng.random_range(0..1000u32) < numerator
}

/// True with probability `probability`.
pub(crate) fn chance(rng: &mut impl Rng, probability: f64) -> bool {
    rng.random::<f64>() < probability
}

/// A uniform integer in the inclusive range.
pub(crate) fn between(rng: &mut impl Rng, (low, high): (u32, u32)) -> u32 {
    rng.random_range(low..=high)
}

/// A count with a geometric distribution of the given mean, capped.
pub(crate) fn geometric(rng: &mut impl Rng, mean: f64, cap: u32) -> u32 {
    let continue_probability = mean / (1.0 + mean);
    let mut count = 0;
    while count < cap && chance(rng, continue_probability) {
        count += 1;
    }
    count
}

/// A heavy-tailed positive value with the given mean (Lomax, shape 2:
/// `mean * (1/sqrt(u) - 1)`), clamped to `[low, high]`.
pub(crate) fn heavy_tailed(rng: &mut impl Rng, mean: f64, low: f64, high: f64) -> f64 {
    // 1 - u is in (0, 1], so the square root is never zero.
    let uniform = 1.0 - rng.random::<f64>();
    (mean * (1.0 / uniform.sqrt() - 1.0)).clamp(low, high)
}

/// Milliseconds after UTC midnight at which someone in `country` is active,
/// following the local daily cycle.
pub(crate) fn time_of_day_ms(rng: &mut impl Rng, country: &Country) -> i64 {
    let local_hour = i64::from(*LOCAL_HOURS.pick(rng));
    let utc_hour = (local_hour - i64::from(country.utc_offset_hours)).rem_euclid(24);
    let within_hour_ms = rng.random_range(0..MS_PER_HOUR);
    let res = utc_hour * MS_PER_HOUR + within_hour_ms;
    debug_assert!((0..MS_PER_DAY).contains(&res));
    res
}

/// The pause between two clicks in one browser session: 5 s to 3 min.
pub(crate) fn click_gap_ms(rng: &mut impl Rng) -> i64 {
    rng.random_range(5_000..180_000)
}

/// Appends 32 lowercase hex digits, the shape of Python's `uuid4().hex`.
pub(crate) fn push_insert_id(rng: &mut impl Rng, out: &mut String) {
    push_hex(out, rng.next_u64(), 16);
    push_hex(out, rng.next_u64(), 16);
}

/// A version-4 UUID in its 8-4-4-4-12 text form, as a browser device id.
pub(crate) fn uuid_v4(rng: &mut impl RngCore) -> String {
    let high = rng.next_u64();
    let low = rng.next_u64();
    let time_hi = 0x4000 | ((high & 0xffff) & 0x0fff);
    let clock_seq = 0x8000 | ((low >> 48) & 0x3fff);
    let mut res = String::with_capacity(36);
    push_hex(&mut res, high >> 32, 8);
    res.push('-');
    push_hex(&mut res, (high >> 16) & 0xffff, 4);
    res.push('-');
    push_hex(&mut res, time_hi, 4);
    res.push('-');
    push_hex(&mut res, clock_seq, 4);
    res.push('-');
    push_hex(&mut res, low & 0xffff_ffff_ffff, 12);
    res
}

/// Appends the low `n_digits` (at most 16) hex digits of `value`, most
/// significant first.
fn push_hex(out: &mut String, value: u64, n_digits: u32) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    debug_assert!(n_digits <= 16);
    let mut text = [0u8; 16];
    for (digit_idx, byte) in text[..n_digits as usize].iter_mut().rev().enumerate() {
        *byte = DIGITS[((value >> (digit_idx * 4)) & 0xf) as usize];
    }
    out.push_str(std::str::from_utf8(&text[..n_digits as usize]).expect("hex digits are ASCII"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_stable_and_distinct() {
        let first = rng_for(7, Domain::User, 3).next_u64();
        assert_eq!(first, rng_for(7, Domain::User, 3).next_u64());
        assert_ne!(first, rng_for(7, Domain::User, 4).next_u64());
        assert_ne!(first, rng_for(7, Domain::Org, 3).next_u64());
        assert_ne!(first, rng_for(8, Domain::User, 3).next_u64());
    }

    #[test]
    fn ids_have_the_documented_shapes() {
        let mut rng = rng_for(1, Domain::User, 0);
        let mut insert_id = String::new();
        push_insert_id(&mut rng, &mut insert_id);
        assert_eq!(insert_id.len(), 32);
        assert!(
            insert_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let uuid = uuid_v4(&mut rng);
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn push_hex_pads_with_zeros() {
        let mut out = String::new();
        push_hex(&mut out, 0xab, 4);
        assert_eq!(out, "00ab");
    }

    #[test]
    fn draws_have_their_means() {
        let mut rng = rng_for(1, Domain::User, 1);
        let n = 20_000;
        let geometric_mean = (0..n)
            .map(|_| f64::from(geometric(&mut rng, 3.0, 1000)))
            .sum::<f64>()
            / 20_000.0;
        assert!((2.8..3.2).contains(&geometric_mean), "{geometric_mean}");
        let heavy_mean = (0..n)
            .map(|_| heavy_tailed(&mut rng, 2.0, 0.0, 1e9))
            .sum::<f64>()
            / 20_000.0;
        assert!((1.5..2.6).contains(&heavy_mean), "{heavy_mean}");
    }
}
