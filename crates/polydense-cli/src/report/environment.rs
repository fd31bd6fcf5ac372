//! Where and with what the report was made, so numbers in it can be traced to a machine and
//! a build.

use std::time::{SystemTime, UNIX_EPOCH};

/// Facts about the program and the machine, as (label, value) rows.
pub fn facts() -> Vec<(String, String)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match std::env::var("RAYON_NUM_THREADS") {
        Ok(v) if !v.is_empty() => format!("{threads} available (RAYON_NUM_THREADS={v})"),
        _ => format!("{threads} available"),
    };
    vec![
        ("polydense".into(), env!("CARGO_PKG_VERSION").to_string()),
        (
            "CUDA build".into(),
            match cfg!(feature = "cuda") {
                true => "yes (feature cuda)".into(),
                false => "no (CPU only)".into(),
            },
        ),
        (
            "CPU".into(),
            cpu_model().unwrap_or_else(|| "unknown".into()),
        ),
        ("threads".into(), threads),
        ("OS".into(), os()),
        ("report made".into(), utc_now()),
    ]
}

/// The first `model name` of /proc/cpuinfo (Linux); `None` elsewhere.
fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// The distribution's name when /etc/os-release gives it, with the kernel and architecture.
fn os() -> String {
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!(", kernel {}", k.trim()))
        .unwrap_or_default();
    format!("{pretty}{kernel}, {}", std::env::consts::ARCH)
}

/// The current time as `YYYY-MM-DD HH:MM:SS UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// Formats seconds since the Unix epoch. Written out (the civil-from-days conversion of
/// H. Hinnant's "chrono-compatible low-level date algorithms") rather than pulling in a
/// date crate for one timestamp.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_match_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        // 2000-02-29 (a leap day of a century leap year) 12:34:56.
        assert_eq!(utc(951_827_696), "2000-02-29 12:34:56 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
    }

    #[test]
    fn facts_name_the_version_and_the_build() {
        let f = facts();
        assert_eq!(f[0].1, env!("CARGO_PKG_VERSION"));
        assert!(f.iter().any(|(k, _)| k == "CUDA build"));
    }
}
