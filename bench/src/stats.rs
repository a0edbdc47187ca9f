//! Summaries of repeated measurements.

/// Median, minimum and maximum of a set of runs.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Summary {
    /// Summarises `samples`, which must not be empty.
    pub fn of(samples: &[f64]) -> Self {
        assert!(!samples.is_empty(), "no samples to summarise");
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        Self {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            runs: sorted.len(),
        }
    }
}

/// Percentiles of one run's latency samples, by nearest rank.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
}

impl Percentiles {
    /// Sorts `samples`, which must not be empty, and reads its percentiles.
    pub fn of(samples: &mut [u64]) -> Self {
        assert!(!samples.is_empty(), "no samples to summarise");
        samples.sort_unstable();
        Self {
            p50: nearest_rank(samples, 0.5),
            p99: nearest_rank(samples, 0.99),
            p999: nearest_rank(samples, 0.999),
        }
    }
}

/// The smallest sample at or above a fraction `q` of `sorted`: the
/// `ceil(q * n)`-th, counting from 1.
fn nearest_rank(sorted: &[u64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

#[cfg(test)]
mod tests {
    use super::{Percentiles, Summary};

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut samples: Vec<u64> = (1..=1000).rev().collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!((p.p50, p.p99, p.p999), (500.0, 990.0, 999.0));
        let one = Percentiles::of(&mut [7]);
        assert_eq!((one.p50, one.p99, one.p999), (7.0, 7.0, 7.0));
    }

    #[test]
    fn odd_and_even_counts() {
        let odd = Summary::of(&[3.0, 1.0, 2.0]);
        assert_eq!((odd.median, odd.min, odd.max, odd.runs), (2.0, 1.0, 3.0, 3));
        let even = Summary::of(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(
            (even.median, even.min, even.max, even.runs),
            (2.5, 1.0, 4.0, 4)
        );
    }
}
