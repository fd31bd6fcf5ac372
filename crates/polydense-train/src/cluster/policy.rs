//! When to re-cluster and with how many clusters: a fixed period (ICT, SIGIR'24), a
//! coarse-to-fine schedule of k (SAC-ICT), learning-progress triggers (ACR-ICT), or SAC's k
//! with ACR's timing. Pure decisions on the epoch, the loss history and the embedding drift,
//! so tests can pin them on synthetic histories.

use serde::{Deserialize, Serialize};

/// Why a clustering run happened; logged in `clusters.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefreshReason {
    /// The first epoch has no clusters yet.
    Initial,
    /// The fixed period elapsed, or SAC's schedule changed k.
    Schedule,
    /// ACR: the mean loss dropped enough since the last clustering.
    LossDrop,
    /// ACR: the probe passages' embeddings moved enough since the last clustering.
    Drift,
    /// ACR: the longest allowed gap between clusterings elapsed.
    MaxGap,
}

impl RefreshReason {
    /// The name logged in `clusters.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshReason::Initial => "initial",
            RefreshReason::Schedule => "schedule",
            RefreshReason::LossDrop => "loss-drop",
            RefreshReason::Drift => "drift",
            RefreshReason::MaxGap => "max-gap",
        }
    }
}

/// SAC-ICT's number of clusters per epoch, coarse to fine: `k_start` until `warmup_epochs`,
/// then `k_step` more per epoch, within `[k_min, k_max]` and never above N/10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SacSchedule {
    /// k of the first epochs.
    pub k_start: usize,
    /// Added to k per epoch after the warm-up.
    pub k_step: usize,
    /// The last epoch (0-based) that still uses `k_start`.
    pub warmup_epochs: u64,
    /// The largest k.
    pub k_max: usize,
    /// The smallest k (unless N/10 is smaller).
    pub k_min: usize,
}

impl SacSchedule {
    /// The public SAC-ICT code's preset: 200, +50 per epoch after epoch 3, at most 500, at
    /// least 50.
    pub const PAPER: SacSchedule = SacSchedule {
        k_start: 200,
        k_step: 50,
        warmup_epochs: 3,
        k_max: 500,
        k_min: 50,
    };

    /// k for `epoch` over `n` examples: the schedule clamped to `[k_min, k_max]`, then capped
    /// at N/10 (so clusters average at least ten examples), and at least 1.
    pub fn k(&self, epoch: u64, n: usize) -> usize {
        let steps = epoch.saturating_sub(self.warmup_epochs) as usize;
        let k = self
            .k_start
            .saturating_add(self.k_step.saturating_mul(steps));
        let k = k.min(self.k_max).max(self.k_min);
        k.min(n / 10).max(1)
    }
}

/// ACR-ICT's triggers (the public code's defaults in parentheses).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AcrRule {
    /// Relative drop of the epoch mean loss that triggers a refresh (0.05).
    pub loss_drop: f64,
    /// Epochs over which the drop is measured (4).
    pub window: usize,
    /// Mean cosine change of the probe passages that triggers a refresh.
    pub drift: f64,
    /// Fewest epochs between clusterings (2).
    pub min_gap: u64,
    /// Most epochs between clusterings (5).
    pub max_gap: u64,
}

impl AcrRule {
    /// The relative loss drop over the last `window` epochs of `losses` (mean losses of the
    /// epochs since the last clustering, oldest first), or None with fewer than two. Only
    /// epochs since the last clustering count: a refresh makes batches harder and lifts the
    /// loss, which is not progress undone.
    pub fn loss_drop(&self, losses: &[f64]) -> Option<f64> {
        let tail = &losses[losses.len().saturating_sub(self.window.max(2))..];
        match tail {
            [first, .., last] if *first > 0.0 => Some((first - last) / first),
            _ => None,
        }
    }

    /// Whether a drift measurement can change the decision `gap` epochs after the last
    /// clustering (inside the gap bounds); the sampler skips the probe encoding otherwise.
    pub fn needs_drift(&self, gap: u64) -> bool {
        gap >= self.min_gap && gap < self.max_gap
    }

    /// The decision `gap` epochs after the last clustering.
    pub fn decide(&self, gap: u64, losses: &[f64], drift: Option<f64>) -> Option<RefreshReason> {
        if gap < self.min_gap {
            return None;
        }
        if gap >= self.max_gap {
            return Some(RefreshReason::MaxGap);
        }
        if self.loss_drop(losses).is_some_and(|d| d > self.loss_drop) {
            return Some(RefreshReason::LossDrop);
        }
        if drift.is_some_and(|d| d > self.drift) {
            return Some(RefreshReason::Drift);
        }
        None
    }
}

/// When the clustered sampler re-encodes and re-clusters, and with which k.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum RefreshPolicy {
    /// Every `every` epochs with a fixed k (ICT; the paper refreshes every 10 epochs).
    Fixed {
        /// Epochs between clusterings.
        every: u64,
        /// Clusters.
        k: usize,
    },
    /// k from SAC's schedule; a refresh whenever k changes.
    Sac(SacSchedule),
    /// A fixed k; refreshes when ACR's triggers fire.
    Acr {
        /// The triggers.
        rule: AcrRule,
        /// Clusters.
        k: usize,
    },
    /// k from SAC's schedule, refreshes when ACR's triggers fire.
    SacAcr {
        /// The schedule of k.
        schedule: SacSchedule,
        /// The triggers.
        rule: AcrRule,
    },
}

/// What a policy decides on at the start of an epoch.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    /// The epoch about to start (0-based).
    pub epoch: u64,
    /// The epoch of the last clustering, None before the first.
    pub last_refresh: Option<u64>,
    /// The k of the last clustering.
    pub current_k: usize,
    /// Mean losses of the epochs since the last clustering, oldest first.
    pub losses: &'a [f64],
    /// The probe drift, when measured.
    pub drift: Option<f64>,
    /// Training examples.
    pub n: usize,
}

impl RefreshPolicy {
    /// The k a clustering at `epoch` over `n` examples uses (at most n, at least 1).
    pub fn k(&self, epoch: u64, n: usize) -> usize {
        let k = match self {
            RefreshPolicy::Fixed { k, .. } | RefreshPolicy::Acr { k, .. } => *k,
            RefreshPolicy::Sac(s) | RefreshPolicy::SacAcr { schedule: s, .. } => s.k(epoch, n),
        };
        k.clamp(1, n.max(1))
    }

    /// The ACR rule, for policies that have one.
    pub fn acr(&self) -> Option<&AcrRule> {
        match self {
            RefreshPolicy::Acr { rule, .. } | RefreshPolicy::SacAcr { rule, .. } => Some(rule),
            _ => None,
        }
    }

    /// Whether measuring the probe drift at `epoch` can change the decision.
    pub fn needs_drift(&self, epoch: u64, last_refresh: Option<u64>) -> bool {
        match (self.acr(), last_refresh) {
            (Some(rule), Some(last)) => rule.needs_drift(epoch.saturating_sub(last)),
            _ => false,
        }
    }

    /// Whether to re-cluster at the start of `input.epoch`, and why.
    pub fn decide(&self, input: &PolicyInput) -> Option<RefreshReason> {
        let Some(last) = input.last_refresh else {
            return Some(RefreshReason::Initial);
        };
        let gap = input.epoch.saturating_sub(last);
        match self {
            RefreshPolicy::Fixed { every, .. } => {
                (gap >= (*every).max(1)).then_some(RefreshReason::Schedule)
            }
            RefreshPolicy::Sac(_) => {
                (self.k(input.epoch, input.n) != input.current_k).then_some(RefreshReason::Schedule)
            }
            RefreshPolicy::Acr { rule, .. } | RefreshPolicy::SacAcr { rule, .. } => {
                rule.decide(gap, input.losses, input.drift)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACR: AcrRule = AcrRule {
        loss_drop: 0.05,
        window: 4,
        drift: 0.02,
        min_gap: 2,
        max_gap: 5,
    };

    fn input(epoch: u64, last: Option<u64>, k: usize, losses: &[f64]) -> PolicyInput<'_> {
        PolicyInput {
            epoch,
            last_refresh: last,
            current_k: k,
            losses,
            drift: None,
            n: 100_000,
        }
    }

    /// Runs a policy over `epochs` epochs with constant losses, returning the refresh epochs.
    fn refreshes(p: &RefreshPolicy, epochs: u64, n: usize) -> Vec<(u64, usize, RefreshReason)> {
        let (mut last, mut k, mut out) = (None, 0, Vec::new());
        for e in 0..epochs {
            let inp = PolicyInput {
                n,
                ..input(e, last, k, &[1.0, 1.0, 1.0])
            };
            if let Some(r) = p.decide(&inp) {
                k = p.k(e, n);
                last = Some(e);
                out.push((e, k, r));
            }
        }
        out
    }

    #[test]
    fn fixed_refreshes_every_n_epochs() {
        let p = RefreshPolicy::Fixed { every: 3, k: 20 };
        let r = refreshes(&p, 10, 1000);
        let epochs: Vec<u64> = r.iter().map(|x| x.0).collect();
        assert_eq!(epochs, vec![0, 3, 6, 9]);
        assert_eq!(r[0].2, RefreshReason::Initial);
        assert!(r[1..]
            .iter()
            .all(|x| x.1 == 20 && x.2 == RefreshReason::Schedule));
        let every = refreshes(&RefreshPolicy::Fixed { every: 1, k: 5 }, 4, 1000);
        assert_eq!(every.len(), 4);
    }

    #[test]
    fn the_paper_sac_schedule() {
        let s = SacSchedule::PAPER;
        let ks: Vec<usize> = (0..12).map(|e| s.k(e, 1_000_000)).collect();
        assert_eq!(
            ks,
            vec![200, 200, 200, 200, 250, 300, 350, 400, 450, 500, 500, 500]
        );
        // N/10 caps k, even below the floor.
        assert_eq!(s.k(9, 3000), 300);
        assert_eq!(s.k(0, 320), 32);
        assert_eq!(s.k(0, 5), 1);
        // A floor above the start lifts it.
        let floor = SacSchedule { k_min: 250, ..s };
        assert_eq!(floor.k(0, 1_000_000), 250);
        // Refreshes happen at epoch 0 and whenever k changes.
        let r = refreshes(&RefreshPolicy::Sac(s), 12, 1_000_000);
        let epochs: Vec<u64> = r.iter().map(|x| x.0).collect();
        assert_eq!(epochs, vec![0, 4, 5, 6, 7, 8, 9]);
        assert_eq!(r.last().unwrap().1, 500);
        // Capped by N/10 = 300 from epoch 5 on: no refresh after k stops changing.
        let r = refreshes(&RefreshPolicy::Sac(s), 12, 3000);
        let epochs: Vec<u64> = r.iter().map(|x| x.0).collect();
        assert_eq!(epochs, vec![0, 4, 5]);
    }

    #[test]
    fn acr_gaps_and_thresholds() {
        // Within the minimum gap nothing fires, whatever the loss did.
        assert_eq!(ACR.decide(1, &[2.0, 1.0], Some(0.5)), None);
        // At the maximum gap a refresh is forced.
        assert_eq!(ACR.decide(5, &[1.0; 5], None), Some(RefreshReason::MaxGap));
        // A 10% drop fires, a 4% one does not.
        assert_eq!(
            ACR.decide(2, &[1.0, 0.9], None),
            Some(RefreshReason::LossDrop)
        );
        assert_eq!(ACR.decide(2, &[1.0, 0.96], None), None);
        // Only the last `window` epochs count: 1.0 → 0.5 four epochs earlier is outside.
        let d = ACR.loss_drop(&[1.0, 0.5, 0.5, 0.5, 0.49]).unwrap();
        assert!((d - 0.02).abs() < 1e-12, "{d}");
        assert_eq!(ACR.loss_drop(&[1.0]), None);
        // Drift above the threshold fires; at or below does not.
        assert_eq!(
            ACR.decide(3, &[1.0, 1.0], Some(0.03)),
            Some(RefreshReason::Drift)
        );
        assert_eq!(ACR.decide(3, &[1.0, 1.0], Some(0.02)), None);
        assert!(!ACR.needs_drift(1) && ACR.needs_drift(2) && ACR.needs_drift(4));
        assert!(!ACR.needs_drift(5));
    }

    #[test]
    fn acr_policy_refreshes_on_triggers_with_a_fixed_k() {
        let p = RefreshPolicy::Acr { rule: ACR, k: 40 };
        // Flat losses and no drift: only the initial run and the max-gap ones.
        let r = refreshes(&p, 12, 1000);
        let epochs: Vec<(u64, RefreshReason)> = r.iter().map(|x| (x.0, x.2)).collect();
        assert_eq!(
            epochs,
            vec![
                (0, RefreshReason::Initial),
                (5, RefreshReason::MaxGap),
                (10, RefreshReason::MaxGap)
            ]
        );
        assert!(r.iter().all(|x| x.1 == 40));
        assert!(p.needs_drift(3, Some(0)) && !p.needs_drift(1, Some(0)));
        assert!(!p.needs_drift(0, None));
        let falling = [1.0, 0.8];
        assert_eq!(
            p.decide(&input(2, Some(0), 40, &falling)),
            Some(RefreshReason::LossDrop)
        );
    }

    #[test]
    fn sac_acr_takes_k_from_the_schedule_and_timing_from_acr() {
        let p = RefreshPolicy::SacAcr {
            schedule: SacSchedule::PAPER,
            rule: ACR,
        };
        // k changes at epoch 4 but ACR does not fire: no refresh until the max gap.
        assert_eq!(p.decide(&input(4, Some(0), 200, &[1.0; 4])), None);
        assert_eq!(
            p.decide(&input(5, Some(0), 200, &[1.0; 5])),
            Some(RefreshReason::MaxGap)
        );
        assert_eq!(p.k(5, 1_000_000), 300);
        assert_eq!(
            p.decide(&input(2, Some(0), 200, &[1.0, 0.5])),
            Some(RefreshReason::LossDrop)
        );
        assert_eq!(
            p.decide(&input(0, None, 0, &[])),
            Some(RefreshReason::Initial)
        );
        assert!(RefreshPolicy::Sac(SacSchedule::PAPER).acr().is_none());
    }
}
