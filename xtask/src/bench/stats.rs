//! Medians and percentiles.

/// The median of `values` (the mean of the middle two for an even count); `NaN` when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        length if length % 2 == 1 => sorted[length / 2],
        length => (sorted[length / 2 - 1] + sorted[length / 2]) / 2.0,
    }
}

/// The `p`-th percentile (0–100) of `values`, nearest-rank; `NaN` when empty.
pub(crate) fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A distribution-free 95 % confidence interval for the median of `values`: the order
/// statistics whose ranks a binomial(n, ½) count puts outside with at most 2.5 % on each side.
/// `None` with fewer than six values (no such interval exists).
pub(crate) fn median_interval(values: &[f64]) -> Option<(f64, f64)> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    // P(count ≤ k) for a binomial(n, ½) count, summed term by term, each term kept as its
    // logarithm (½ⁿ alone underflows past a thousand values).
    let mut log_term = -(n as f64) * std::f64::consts::LN_2;
    let mut below = 0.0;
    let mut rank = None;
    for k in 0..n / 2 {
        below += log_term.exp();
        if below > 0.025 {
            break;
        }
        rank = Some(k);
        log_term += ((n - k) as f64 / (k + 1) as f64).ln();
    }
    rank.map(|k| (sorted[k], sorted[n - 1 - k]))
}

/// Splits `total` samples into `rounds` near-equal shares that add up to `total`.
pub(crate) fn shares(total: usize, rounds: usize) -> Vec<usize> {
    let rounds = rounds.max(1);
    (0..rounds).map(|round| total / rounds + usize::from(round < total % rounds)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&hundred, 50.0), 50.0);
        assert_eq!(percentile(&hundred, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn median_intervals_take_the_binomial_ranks() {
        // Five values cannot give a 95 % interval: even the extremes leave 2 × 1/32 outside.
        assert_eq!(median_interval(&[1.0, 2.0, 3.0, 4.0, 5.0]), None);
        // Six: the extremes (each side 1/64 ≤ 2.5 %).
        assert_eq!(median_interval(&[6.0, 1.0, 5.0, 2.0, 4.0, 3.0]), Some((1.0, 6.0)));
        // Twenty-one: ranks 6 and 16 (P(count ≤ 5) = 1.3 %, P(count ≤ 6) = 3.9 %).
        let values: Vec<f64> = (1..=21).rev().map(f64::from).collect();
        assert_eq!(median_interval(&values), Some((6.0, 16.0)));
        // Many values: about n/2 ∓ 1.96·√n/2, and never upside down.
        let values: Vec<f64> = (1..=2000).map(f64::from).collect();
        let (low, high) = median_interval(&values).unwrap();
        assert!((950.0..=960.0).contains(&low) && (1040.0..=1050.0).contains(&high), "{low} – {high}");
    }

    #[test]
    fn shares_add_up() {
        assert_eq!(shares(50, 3), [17, 17, 16]);
        assert_eq!(shares(10_000, 5).iter().sum::<usize>(), 10_000);
    }
}
