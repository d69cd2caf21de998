//! Order statistics over small samples (a handful of rounds per configuration).

/// Median of `xs`, `None` when empty. NaNs are ignored.
pub fn median(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    percentile(xs, 50.0)
}

/// Nearest-rank percentile `p` (0..=100) of `xs`, `None` when empty. NaNs are ignored.
pub fn percentile(xs: impl IntoIterator<Item = f64>, p: f64) -> Option<f64> {
    let mut v: Vec<f64> = xs.into_iter().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Geometric mean of positive ratios, `None` when there are none.
pub fn geometric_mean(xs: impl IntoIterator<Item = f64>) -> Option<f64> {
    let logs: Vec<f64> = xs
        .into_iter()
        .filter(|x| *x > 0.0 && x.is_finite())
        .map(f64::ln)
        .collect();
    if logs.is_empty() {
        return None;
    }
    Some((logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

/// `a / b` when both exist and `b` is not zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

/// A number for a table cell: `-` when missing.
pub fn cell(x: Option<f64>, decimals: usize) -> String {
    match x {
        Some(x) => format!("{x:.decimals$}"),
        None => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_percentiles_use_nearest_rank() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.0));
        assert_eq!(percentile((1..=100).map(f64::from), 99.0), Some(99.0));
        assert_eq!(percentile([5.0], 99.0), Some(5.0));
        assert_eq!(median(std::iter::empty()), None);
        assert_eq!(median([f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn geometric_mean_skips_what_is_not_a_ratio() {
        let g = geometric_mean([0.5, 2.0, 0.0, f64::INFINITY]).unwrap();
        assert!((g - 1.0).abs() < 1e-12);
        assert_eq!(geometric_mean([0.0]), None);
    }

    #[test]
    fn ratio_and_cells_handle_missing_values() {
        assert_eq!(ratio(Some(1.0), Some(0.0)), None);
        assert_eq!(ratio(Some(1.0), None), None);
        assert_eq!(ratio(Some(3.0), Some(2.0)), Some(1.5));
        assert_eq!(cell(None, 2), "-");
        assert_eq!(cell(Some(1.234), 2), "1.23");
    }
}
