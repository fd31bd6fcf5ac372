//! [`IctConfig`]: the keys of `[sampler] kind = "ict-p"` and `"ict-q"`, and the refresh policy
//! they describe.

use serde::{Deserialize, Serialize};

use super::policy::{AcrRule, RefreshPolicy, SacSchedule};
use crate::error::{Result, TrainError};

/// The clustered samplers' keys: k, when to re-cluster, and the SAC and ACR rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IctConfig {
    /// Clusters k under `refresh = "fixed"` or `"acr"`; 0 picks N / batch_size, so a cluster
    /// averages one batch.
    pub clusters: usize,
    /// When to re-cluster: "fixed" (every `refresh_every` epochs), "sac" (k from the SAC-ICT
    /// schedule, whenever it changes), "acr" (ACR-ICT's loss-drop, drift and gap rules) or
    /// "sac+acr" (SAC's k at ACR's times).
    pub refresh: String,
    /// Epochs between clusterings under `refresh = "fixed"` (the paper uses 10).
    pub refresh_every: u64,
    /// The unit of the refresh schedules; only "epoch".
    pub refresh_unit: String,
    /// Defaults of the SAC keys: "paper" (start 200, +50 per epoch after epoch 3, at most
    /// 500, at least 50, as the public SAC-ICT code) or "none" (every `sac_*` key given).
    pub sac_preset: String,
    /// SAC: k of the first epochs (overrides the preset).
    pub sac_k_start: Option<usize>,
    /// SAC: k added per epoch after the warm-up (overrides the preset).
    pub sac_k_step: Option<usize>,
    /// SAC: the last epoch (0-based) at `sac_k_start` (overrides the preset).
    pub sac_warmup_epochs: Option<u64>,
    /// SAC: the largest k (overrides the preset); k also never exceeds N/10.
    pub sac_k_max: Option<usize>,
    /// SAC: the smallest k (overrides the preset).
    pub sac_k_min: Option<usize>,
    /// ACR: re-cluster when the epoch mean loss fell by more than this fraction over the
    /// window (public ACR-ICT code: 0.05).
    pub acr_loss_drop: f64,
    /// ACR: epochs over which the loss drop is measured (4).
    pub acr_window: usize,
    /// ACR: re-cluster when the probe passages' mean cosine change since the last
    /// clustering exceeds this.
    pub acr_drift: f64,
    /// ACR: probe passages whose drift is measured at epoch starts.
    pub acr_probe: usize,
    /// ACR: fewest epochs between clusterings (2).
    pub acr_min_gap: u64,
    /// ACR: most epochs between clusterings; a refresh is forced then (5).
    pub acr_max_gap: u64,
    /// Most Lloyd iterations of each k-means run.
    pub kmeans_iters: usize,
}

impl Default for IctConfig {
    fn default() -> Self {
        IctConfig {
            clusters: 0,
            refresh: "fixed".into(),
            refresh_every: 1,
            refresh_unit: "epoch".into(),
            sac_preset: "paper".into(),
            sac_k_start: None,
            sac_k_step: None,
            sac_warmup_epochs: None,
            sac_k_max: None,
            sac_k_min: None,
            acr_loss_drop: 0.05,
            acr_window: 4,
            acr_drift: 0.02,
            acr_probe: 256,
            acr_min_gap: 2,
            acr_max_gap: 5,
            kmeans_iters: 20,
        }
    }
}

impl IctConfig {
    /// Checks ranges that would otherwise fail deep inside a run; errors name the key as
    /// `sampler.<key>`.
    pub fn validate(&self) -> Result<()> {
        let positive = |field: &str, ok: bool| match ok {
            true => Ok(()),
            false => Err(TrainError::config(
                format!("sampler.{field}"),
                "must be greater than 0",
            )),
        };
        if self.refresh_unit != "epoch" {
            return Err(TrainError::config(
                "sampler.refresh_unit",
                format!("unknown unit `{}` (known: epoch)", self.refresh_unit),
            ));
        }
        positive("refresh_every", self.refresh_every > 0)?;
        positive("kmeans_iters", self.kmeans_iters > 0)?;
        positive("acr_probe", self.acr_probe > 0)?;
        positive("acr_max_gap", self.acr_max_gap > 0)?;
        if self.acr_window < 2 {
            return Err(TrainError::config(
                "sampler.acr_window",
                "must be at least 2 epochs",
            ));
        }
        if self.acr_min_gap > self.acr_max_gap {
            return Err(TrainError::config(
                "sampler.acr_min_gap",
                "must not exceed acr_max_gap",
            ));
        }
        self.refresh_policy(1, 1)?;
        Ok(())
    }

    /// SAC's schedule: the preset, then every `sac_*` key that is set.
    pub fn sac_schedule(&self) -> Result<SacSchedule> {
        let preset = match self.sac_preset.as_str() {
            "paper" => Some(SacSchedule::PAPER),
            "none" => None,
            other => {
                return Err(TrainError::config(
                    "sampler.sac_preset",
                    format!("unknown preset `{other}` (known: paper, none)"),
                ))
            }
        };
        let pick = |field: &str, key: Option<usize>, preset: Option<usize>| {
            key.or(preset).ok_or_else(|| {
                TrainError::config(
                    format!("sampler.{field}"),
                    "is required when sac_preset = \"none\"",
                )
            })
        };
        let s = SacSchedule {
            k_start: pick("sac_k_start", self.sac_k_start, preset.map(|p| p.k_start))?,
            k_step: pick("sac_k_step", self.sac_k_step, preset.map(|p| p.k_step))?,
            warmup_epochs: pick(
                "sac_warmup_epochs",
                self.sac_warmup_epochs.map(|e| e as usize),
                preset.map(|p| p.warmup_epochs as usize),
            )? as u64,
            k_max: pick("sac_k_max", self.sac_k_max, preset.map(|p| p.k_max))?,
            k_min: pick("sac_k_min", self.sac_k_min, preset.map(|p| p.k_min))?,
        };
        if s.k_min > s.k_max {
            return Err(TrainError::config(
                "sampler.sac_k_min",
                "must not exceed sac_k_max",
            ));
        }
        Ok(s)
    }

    /// ACR's triggers.
    pub fn acr_rule(&self) -> AcrRule {
        AcrRule {
            loss_drop: self.acr_loss_drop,
            window: self.acr_window,
            drift: self.acr_drift,
            min_gap: self.acr_min_gap,
            max_gap: self.acr_max_gap,
        }
    }

    /// The refresh policy over `n` training examples in batches of `batch_size`.
    pub fn refresh_policy(&self, n: usize, batch_size: usize) -> Result<RefreshPolicy> {
        let k = match self.clusters {
            0 => (n / batch_size.max(1)).max(1),
            k => k,
        };
        Ok(match self.refresh.as_str() {
            "fixed" => RefreshPolicy::Fixed {
                every: self.refresh_every,
                k,
            },
            "sac" => RefreshPolicy::Sac(self.sac_schedule()?),
            "acr" => RefreshPolicy::Acr {
                rule: self.acr_rule(),
                k,
            },
            "sac+acr" => RefreshPolicy::SacAcr {
                schedule: self.sac_schedule()?,
                rule: self.acr_rule(),
            },
            other => {
                return Err(TrainError::config(
                    "sampler.refresh",
                    format!("unknown refresh `{other}` (known: fixed, sac, acr, sac+acr)"),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sac_preset_and_explicit_keys() {
        let c = IctConfig {
            refresh: "sac".into(),
            sac_k_start: Some(8),
            sac_k_max: Some(16),
            sac_k_min: Some(2),
            ..IctConfig::default()
        };
        c.validate().unwrap();
        let s = c.sac_schedule().unwrap();
        assert_eq!(
            (s.k_start, s.k_step, s.warmup_epochs, s.k_max, s.k_min),
            (8, 50, 3, 16, 2)
        );
        assert_eq!(
            IctConfig::default().sac_schedule().unwrap(),
            SacSchedule::PAPER
        );
        let none = IctConfig {
            sac_preset: "none".into(),
            refresh: "sac".into(),
            sac_k_start: Some(4),
            ..IctConfig::default()
        };
        let err = none.validate().unwrap_err().to_string();
        assert!(err.starts_with("config `sampler.sac_k_step`"), "{err}");
        // Fixed k: `clusters`, or N / batch_size when 0.
        assert_eq!(
            IctConfig::default().refresh_policy(320, 16).unwrap(),
            RefreshPolicy::Fixed { every: 1, k: 20 }
        );
        let err = IctConfig {
            refresh: "sometimes".into(),
            ..IctConfig::default()
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("config `sampler.refresh`"), "{err}");
    }
}
